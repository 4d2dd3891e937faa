"""sd-backbones: the four classifier backbones, real forward/backward passes on CPU."""

from __future__ import annotations

import pytest
import torch
from conftest import run_sd
from torch import nn

from sd_core.errors import ConfigError
from sd_core.plugins import get_registry

NAMES = ("cnn_light", "eegnet", "resnet18", "transformer")
EMB = 24

#: small options for the overfit check (S = 32)
SMALL = {
    "cnn_light": {"hidden": [64], "pool_size": 4},
    "eegnet": {"f1": 4, "depth": 2, "f2": 8, "kernel": 7},
    "resnet18": {"width": 8, "stem": "small"},
    "transformer": {"d_model": 32, "layers": 1, "heads": 2, "ff_dim": 64},
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build(name: str, image_size: int, embedding_dim: int = EMB, **options) -> nn.Module:
    return get_registry().backbone(name).build(embedding_dim, image_size, **options)


def first_layer(model: nn.Module) -> nn.Module:
    """The first conv or linear layer the input goes through (registration order)."""
    return next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def batch(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 1, size, size) * 2 - 1


def test_registry_has_the_four_backbones_owned_by_the_plugin():
    reg = get_registry()
    assert set(NAMES) <= set(reg.backbones)
    for name in NAMES:
        spec = reg.backbones[name]
        assert reg.owner("sd_backbones", name) == "sd-backbones"
        assert spec.description and "\n" not in spec.description
        assert spec.options and all(o.help for o in spec.options.values())
    assert reg.backbones["cnn_light"].options["kernels"].default == [5, 3, 3]
    assert reg.backbones["cnn_light"].options["activation"].choices == ("gelu", "relu", "silu")
    assert reg.backbones["transformer"].options["pooling"].choices == ("mean", "cls")
    assert reg.backbones["resnet18"].options["stem"].choices == ("imagenet", "small")


@pytest.mark.parametrize("size", [32, 64, 96])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, size):
    model = build(name, size)
    model.train()
    x = batch(3, size)
    y = model(x)
    assert y.shape == (3, EMB)
    assert torch.isfinite(y).all()
    # different inputs give different embeddings
    for i in range(3):
        for j in range(i + 1, 3):
            assert not torch.allclose(y[i], y[j], atol=1e-5), (i, j)
    y.square().mean().backward()
    grad = first_layer(model).weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.norm() > 0


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_differs_from_train(name):
    model = build(name, 32)
    x = batch(4, 32)
    model.train()
    with torch.no_grad():
        train_out = model(x)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)
    # dropout (cnn_light, eegnet, transformer) and batch statistics (resnet18 and the CNNs)
    assert not torch.allclose(train_out, a, atol=1e-4)


def test_transformer_without_dropout_is_the_same_in_train_and_eval():
    model = build("transformer", 32, dropout=0.0, d_model=32, heads=2, layers=2)
    x = batch(2, 32)
    with torch.no_grad():
        model.train()
        t = model(x)
        model.eval()
        e = model(x)
    torch.testing.assert_close(t, e, atol=1e-5, rtol=1e-5)


def test_transformer_cls_pooling_and_patches():
    for opts in ({"pooling": "cls"}, {"patch": 4}, {"patch": 8, "pooling": "cls"}):
        model = build("transformer", 64, d_model=32, heads=4, layers=1, **opts)
        tokens = 64 // opts.get("patch", 1) + (opts.get("pooling") == "cls")
        assert model.pos.shape == (1, tokens, 32)
        assert model.proj.in_features == 64 * opts.get("patch", 1)
        y = model(batch(3, 64))
        assert y.shape == (3, EMB) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="built for"):
        model(batch(2, 32))


def test_transformer_tokens_are_time_columns():
    """The token projection sees one token per `patch` adjacent columns, each the full height."""
    model = build("transformer", 32, d_model=16, heads=2, layers=1, patch=2)
    x = batch(1, 32)
    captured = []
    model.proj.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    model(x)
    tokens = captured[0]
    assert tokens.shape == (1, 16, 64)
    # token 3 holds columns 6 and 7, each the full height
    torch.testing.assert_close(tokens[0, 3], torch.cat([x[0, 0, :, 6], x[0, 0, :, 7]]))


def test_unknown_option_names_allowed_ones():
    for name in NAMES:
        spec = get_registry().backbone(name)
        with pytest.raises(ConfigError) as err:
            spec.build(EMB, 32, no_such_option=1)
        msg = str(err.value)
        assert "no_such_option" in msg and name in msg
        for allowed in spec.options:
            assert allowed in msg


@pytest.mark.parametrize("name, size, options, match", [
    ("transformer", 96, {"patch": 5}, "patch .5. must divide the image size .96."),
    ("transformer", 32, {"pooling": "max"}, "pooling = 'max' is not allowed; allowed: mean, cls"),
    ("transformer", 32, {"d_model": 30, "heads": 4}, "heads .4. must divide d_model .30."),
    ("transformer", 32, {"layers": 0}, "layers must be greater than 0"),
    ("transformer", 32, {"dropout": 1.0}, "dropout must be at least 0 and less than 1"),
    ("cnn_light", 32, {"activation": "tanh"}, "allowed: gelu, relu, silu"),
    ("cnn_light", 32, {"kernels": [5, 3]}, "must have the same length"),
    ("cnn_light", 32, {"channels": [8, 0, 4]}, "channels must be a list of positive integers"),
    ("cnn_light", 32, {"hidden": "512"}, "hidden must be a list"),
    ("cnn_light", 4, {}, "too small"),
    ("eegnet", 32, {"kernel": 32}, "kernel must be odd"),
    ("eegnet", 32, {"f1": 2.5}, "f1 must be an integer"),
    ("resnet18", 32, {"stem": "cifar"}, "allowed: imagenet, small"),
    ("resnet18", 32, {"width": True}, "width must be an integer"),
    ("resnet18", 0, {}, "image_size must be a positive integer"),
])
def test_bad_options_are_config_errors(name, size, options, match):
    with pytest.raises(ConfigError, match=match):
        build(name, size, **options)


def test_options_accept_tuples_and_ints_for_floats():
    model = build("cnn_light", 32, kernels=(3, 3), channels=(4, 8), hidden=(), dropout=0,
                  activation="relu", pool_size=2)
    assert model(batch(2, 32)).shape == (2, EMB)
    assert isinstance(model.features[2], nn.ReLU)
    assert model.head[-1].in_features == 8 * 2 * 2


def test_cnn_light_parameter_count():
    """Default cnn_light at S=128, embedding 256, counted by hand from the architecture."""
    model = build("cnn_light", 128, embedding_dim=256)
    conv = lambda cin, cout, k: cin * cout * k * k + cout
    bn = lambda c: 2 * c
    lin = lambda i, o: i * o + o
    expected = (
        conv(1, 8, 5) + bn(8) + conv(8, 16, 3) + bn(16) + conv(16, 32, 3) + bn(32)
        + lin(32 * 8 * 8, 512) + lin(512, 128) + lin(128, 256)
    )
    assert expected == 1_153_904
    assert sum(p.numel() for p in model.parameters()) == expected
    # the pooled grid stays 8 × 8 for large images: same count at S=512
    assert sum(p.numel() for p in build("cnn_light", 512, embedding_dim=256).parameters()) == expected


def test_other_parameter_counts():
    """Hand counts at S=128, embedding 256, default options."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    # transformer: projection, positions, 4 × (attention, out-proj, two FF linears, two LNs), LN, out
    d, ff = 128, 256
    layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 4 * d
    assert count(build("transformer", 128, embedding_dim=256)) == (
        (128 * d + d) + 128 * d + 4 * layer + 2 * d + (d * 256 + 256))
    # eegnet: temporal conv, BN, depthwise over 128 rows, BN, separable (15 + pointwise), BN, linear
    assert count(build("eegnet", 128, embedding_dim=256)) == (
        8 * 31 + 16 + 16 * 128 + 32 + 16 * 15 + 16 * 16 + 32 + (16 * 4 * 256 + 256))
    # resnet18 at width 64: torchvision's 11,689,512 with 1 input channel and a 256-wide head
    assert count(build("resnet18", 128, embedding_dim=256)) == (
        11_689_512 - 64 * 3 * 49 + 64 * 49 - (512 * 1000 + 1000) + (512 * 256 + 256))


def two_class_data(n: int = 32, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: bright top half; class 1: bright bottom half; both with noise."""
    labels = torch.arange(n) % 2
    x = torch.full((n, 1, size, size), -0.5)
    half = size // 2
    x[labels == 0, :, :half] = 0.5
    x[labels == 1, :, half:] = 0.5
    x = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    return x, labels


@pytest.mark.parametrize("name", NAMES)
def test_overfits_two_classes(name):
    x, y = two_class_data()
    backbone = build(name, 32, embedding_dim=16, **SMALL[name])
    model = nn.Sequential(backbone, nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    x_new, y_new = two_class_data(64)
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
        acc_new = (model(x_new).argmax(1) == y_new).float().mean().item()
    assert acc >= 0.9, f"{name}: train accuracy {acc:.2f}, last loss {loss.item():.3f}"
    assert acc_new >= 0.9, f"{name}: accuracy on new samples {acc_new:.2f}"


def test_sd_backbones_lists_the_four():
    res = run_sd("backbones")
    assert res.returncode == 0, res.stderr
    for name in NAMES:
        assert name in res.stdout
    assert "sd-backbones" in res.stdout
    assert "kernels = [5, 3, 3]" in res.stdout
