"""Diffusion model kinds ([model] kind): the built-in dit, a kind from a plugin, config errors,
and runs of an sd before kinds. Tiny models on 16×16 images; each test takes seconds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import make_fake_dist, read_rows, train_until

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_diffusion import ONE_THREAD, one_line_error, sd, train, write_cfg, write_processed  # noqa: E402

DIT = {"kind": "dit", "patch_size": 4, "num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 8}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_processed(tmp_path_factory.mktemp("data") / "parkinsons")


def with_model(cfg: Path, model: dict) -> Path:
    """Replace the [model] section write_cfg wrote."""
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in model.items())
    text = re.sub(r"\[model\]\n(?:.+\n)+?\n", f"[model]\n{body}\n\n", cfg.read_text())
    cfg.write_text(text)
    return cfg


def test_dit_trains_resumes_bit_exactly_and_generates(tmp_path, data, monkeypatch):
    from safetensors.torch import load_file

    from sd_core.diffusion.model import load_run

    monkeypatch.chdir(tmp_path)
    kw = {"steps": 8, "checkpoint_steps": 4, "ema_decay": 0.9, "lr": 1e-3, "grad_accum": 2,
          "sample_solver_steps": 2, "samples_per_condition": 1}
    full = with_model(write_cfg(tmp_path / "full.toml", data, tmp_path / "full", **kw), DIT)
    part = with_model(write_cfg(tmp_path / "part.toml", data, tmp_path / "part", **kw), DIT)
    train(full)

    train_until(train, part, 6)
    res = train(part, resume=True)
    assert res["start"] == 4 and res["steps"] == 8
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())
    h_part = json.loads((tmp_path / "part" / "history.json").read_text())
    assert [h["loss"] for h in h_part] == [h["loss"] for h in h_full]
    for sub in ("transformer/diffusion_pytorch_model.safetensors", "conditioning/conditioning.safetensors"):
        a, b = load_file(str(tmp_path / "full" / sub)), load_file(str(tmp_path / "part" / sub))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    assert not (tmp_path / "full" / "unet").exists()
    info = json.loads((tmp_path / "full" / "model.json").read_text())
    assert info["kind"] == "dit" and info["folder"] == "transformer" and info["options"]["patch_size"] == 4
    cfg = json.loads((tmp_path / "full" / "transformer" / "config.json").read_text())
    assert cfg["_class_name"] == "SD3Transformer2DModel" and cfg["in_channels"] == 1
    run = load_run(tmp_path / "full")
    assert run.kind == "dit" and run.model.image_size == 16
    assert run.model.cond.config["dim"] == 16  # heads × head dim: the transformer's pooled projection

    from sd_core.diffusion.generate import generate_dataset

    outs = [tmp_path / "g1", tmp_path / "g2"]
    r = sd("generate", str(tmp_path / "full"), "--n", "2", "--balanced", "--steps", "3", "--seed", "3",
           "--out", str(outs[0]))
    assert r.returncode == 0, r.stderr
    generate_dataset(tmp_path / "full", outs[1], n=2, balanced=True, steps=3, seed=3)
    from sd_core.errors import SdError

    with pytest.raises(SdError, match="--prompt: .* is not conditioned on captions"):
        generate_dataset(tmp_path / "full", tmp_path / "g4", n=1, steps=2, prompt="a healthy subject")
    rows = read_rows(outs[0] / "train-metadata.csv")
    assert sorted(r["health"] for r in rows) == ["H", "H", "PD", "PD"]
    for r in rows:
        assert (outs[0] / r["file_name"]).read_bytes() == (outs[1] / r["file_name"]).read_bytes()


def test_kind_and_option_errors_are_one_line(tmp_path, data):
    cfg = with_model(write_cfg(tmp_path / "k.toml", data, tmp_path / "r"), {**DIT, "kind": "ditt"})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "[model] kind = 'ditt' is not installed" in msg and "allowed: dit, latent-unet, stable-diffusion, unet" in msg
    assert "did you mean 'dit'" in msg and "k.toml" in msg

    cfg = with_model(write_cfg(tmp_path / "o.toml", data, tmp_path / "r"), {**DIT, "num_layer": 2})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "unknown key 'num_layer'" in msg and "did you mean 'num_layers'" in msg

    cfg = with_model(write_cfg(tmp_path / "c.toml", data, tmp_path / "r"), {**DIT, "patch_size": 3})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "patch_size = 3 is not allowed; allowed: 1, 2, 4, 8" in msg

    cfg = with_model(write_cfg(tmp_path / "s.toml", data, tmp_path / "r"), {**DIT, "patch_size": 8,
                                                                          "num_layers": 0})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "num_layers must be a positive integer" in msg

    # a unet option under the dit kind is an unknown key, naming the dit's options
    cfg = with_model(write_cfg(tmp_path / "u.toml", data, tmp_path / "r"), {**DIT, "block_out_channels": [8]})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "unknown key 'block_out_channels'" in msg and "num_attention_heads" in msg


def guide_kind_plugin() -> str:
    """The diffusion-kind plugin of the plugin guide (section 9), as the guide writes it."""
    from conftest import ROOT

    text = (ROOT / "docs" / "writing-a-dataset-plugin.md").read_text()
    m = re.search(r"<!-- example: diffusion-kind -->\s*```python\n(.*?)```", text, re.S)
    assert m, "the guide lost its diffusion-kind example"
    return m.group(1)


def test_a_plugin_kind_is_listed_trained_and_sampled(tmp_path, data, monkeypatch):
    site = tmp_path / "site"
    make_fake_dist(site, "sd-tinydit", "sd_tinydit", guide_kind_plugin())
    res = sd_with(site, "diffusion", "models", "--json")
    assert res.returncode == 0, res.stderr
    kinds = {k["kind"]: k for k in json.loads(res.stdout)}
    assert kinds["tiny-dit"]["plugin"] == "sd-tinydit" and kinds["tiny-dit"]["options"]["width"]["default"] == 8
    assert {"unet", "dit", "latent-unet", "stable-diffusion"} <= set(kinds)

    odd = with_model(write_cfg(tmp_path / "odd.toml", data, tmp_path / "run"), {"kind": "tiny-dit", "width": 7})
    assert "odd.toml: [model] width = 7 must be even" in one_line_error(sd_with(site, "diffusion", "train", str(odd)))
    cfg = with_model(write_cfg(tmp_path / "p.toml", data, tmp_path / "run", steps=3, sample_solver_steps=2,
                               samples_per_condition=1), {"kind": "tiny-dit", "width": 12})
    # training and sampling in this process, with the plugin installed on sys.path
    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.model import load_run
    from sd_core.errors import PluginError
    from sd_core.plugins import reset_registry

    monkeypatch.syspath_prepend(str(site))
    reset_registry()
    try:
        train(cfg)
        assert json.loads((tmp_path / "run" / "tiny" / "config.json").read_text())["attention_head_dim"] == 6
        res = generate_dataset(tmp_path / "run", tmp_path / "gen", n=1, balanced=True, steps=2)
        assert res["per_subject"] == {"gen-H": 1, "gen-PD": 1}
    finally:
        monkeypatch.undo()
        reset_registry()
    with pytest.raises(PluginError, match="unknown diffusion model kind 'tiny-dit'"):
        load_run(tmp_path / "run")  # without the plugin the run cannot be loaded, and says why


def sd_with(site: Path, *args: str):
    from conftest import run_sd

    return run_sd(*args, env=ONE_THREAD, extra_path=[site])


def test_runs_and_checkpoints_of_an_sd_before_kinds_still_load(tmp_path, data, monkeypatch):
    """A run folder without model.json is a unet run; checkpoint weights named unet.* load."""
    from safetensors.torch import load_file, save_file

    from sd_core.diffusion.model import load_run

    monkeypatch.chdir(tmp_path)
    cfg = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", steps=2, checkpoint_steps=1,
                    sample_solver_steps=2, samples_per_condition=1)
    cfg.write_text(cfg.read_text().replace("[model]\n", "[model]\nkind = \"unet\"\n"))
    train(cfg)
    run = tmp_path / "run"
    before = load_run(run)
    (run / "model.json").unlink()
    after = load_run(run)
    assert after.kind == "unet"
    for (k, a), (_, b) in zip(before.model.state_dict().items(), after.model.state_dict().items()):
        assert torch.equal(a, b), k

    # an old checkpoint (weights under unet.*) and config.toml (no [model] kind) resume bit-exactly
    from sd_core.diffusion.train import StopTraining

    part = write_cfg(tmp_path / "part.toml", data, tmp_path / "part", steps=2, checkpoint_steps=1,
                     sample_solver_steps=2, samples_per_condition=1)

    def interrupt(step, loss):
        raise StopTraining

    with pytest.raises(StopTraining):
        train(part, on_step=interrupt)
    ckpt = tmp_path / "part" / "checkpoints" / "step-000001" / "model.safetensors"
    weights = load_file(str(ckpt))
    save_file({k.replace("network.unet.", "unet.", 1): v for k, v in weights.items()}, str(ckpt))
    saved = tmp_path / "part" / "config.toml"
    saved.write_text(saved.read_text().replace('kind = "unet"\n', ""))
    assert "kind" not in saved.read_text()
    (tmp_path / "part" / "model.json").unlink()
    res = train(part, resume=True)
    assert res["start"] == 1 and res["steps"] == 2
    sub = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(str(run / sub)), load_file(str(tmp_path / "part" / sub))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
