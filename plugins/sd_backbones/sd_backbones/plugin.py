"""Hooks of sd-backbones: four classifier backbones for spectrogram images.

Each backbone is a :class:`~sd_core.specs.BackboneSpec` whose ``build(embedding_dim,
image_size, **options)`` returns a ``torch.nn.Module`` mapping a ``(B, 1, S, S)`` float batch
(values in [-1, 1]) to a ``(B, embedding_dim)`` embedding; the core puts dropout and one linear
head per task on top.

This module is imported by ``sd backbones`` and must stay light: it does not import torch. The
networks live in :mod:`sd_backbones.networks`, imported inside the build functions.

Adding a backbone from another package works the same way: return ``BackboneSpec``s from an
``sd_backbones`` hook in a module registered under the entry point group ``sd`` (see this
package's README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sd_core import hookimpl
from sd_core.errors import ConfigError
from sd_core.specs import BackboneSpec, OptionSpec

# -- option checking (no torch) ---------------------------------------------------------------


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "a boolean"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list):
        return "a list of positive integers"
    return type(default).__name__


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, list):
        return isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        )
    return isinstance(value, type(default))


def resolve_options(backbone: str, schema: Mapping[str, OptionSpec],
                    given: Mapping[str, Any]) -> dict[str, Any]:
    """The backbone's options: defaults updated with ``given``, after checking names, types and
    choices. Raises :class:`ConfigError` naming the allowed options or values."""
    unknown = [k for k in given if k not in schema]
    if unknown:
        raise ConfigError(
            f"backbone {backbone!r}: unknown option(s) {', '.join(map(repr, sorted(unknown)))}; "
            f"allowed: {', '.join(schema)}"
        )
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        value = given.get(name, spec.default)
        if not _type_ok(spec.default, value):
            raise ConfigError(
                f"backbone {backbone!r}: option {name} must be {_type_name(spec.default)}, got {value!r}"
            )
        if spec.choices and value not in spec.choices:
            raise ConfigError(
                f"backbone {backbone!r}: option {name} = {value!r} is not allowed; allowed: "
                + ", ".join(map(str, spec.choices))
            )
        out[name] = list(value) if isinstance(spec.default, list) else value
    return out


def _require(ok: bool, backbone: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"backbone {backbone!r}: {message}")


def _check_dims(backbone: str, embedding_dim: Any, image_size: Any) -> None:
    for name, v in (("embedding_dim", embedding_dim), ("image_size", image_size)):
        _require(isinstance(v, int) and not isinstance(v, bool) and v > 0, backbone,
                 f"{name} must be a positive integer, got {v!r}")


def _fraction(backbone: str, name: str, v: float) -> None:
    _require(0 <= v < 1, backbone, f"option {name} must be at least 0 and less than 1, got {v!r}")


def _positive(backbone: str, opts: Mapping[str, Any], *names: str) -> None:
    for name in names:
        _require(opts[name] > 0, backbone, f"option {name} must be greater than 0, got {opts[name]!r}")


# -- cnn_light --------------------------------------------------------------------------------

CNN_LIGHT_OPTIONS = {
    "kernels": OptionSpec([5, 3, 3], "kernel size of each conv stage"),
    "channels": OptionSpec([8, 16, 32], "output channels of each conv stage (conv, BN, act, max-pool 2)"),
    "hidden": OptionSpec([512, 128], "widths of the hidden linear layers before the embedding"),
    "dropout": OptionSpec(0.3, "dropout before the first linear layer"),
    "activation": OptionSpec("gelu", "activation: gelu | relu | silu", ("gelu", "relu", "silu")),
    "pool_size": OptionSpec(8, "conv features are average-pooled to a pool_size × pool_size grid"),
}


def build_cnn_light(embedding_dim: int, image_size: int, **options: Any):
    name = "cnn_light"
    _check_dims(name, embedding_dim, image_size)
    o = resolve_options(name, CNN_LIGHT_OPTIONS, options)
    _require(len(o["channels"]) > 0, name, "option channels must name at least one stage")
    _require(len(o["kernels"]) == len(o["channels"]), name,
             f"options kernels ({len(o['kernels'])}) and channels ({len(o['channels'])}) "
             "must have the same length")
    _fraction(name, "dropout", o["dropout"])
    _positive(name, o, "pool_size")
    stages = len(o["channels"])
    _require(image_size >= 2 ** stages, name,
             f"image_size {image_size} is too small for {stages} max-pool stages "
             f"(at least {2 ** stages})")
    from sd_backbones.networks import CnnLight

    return CnnLight(embedding_dim, **o)


# -- transformer ------------------------------------------------------------------------------

TRANSFORMER_OPTIONS = {
    "d_model": OptionSpec(128, "token width"),
    "layers": OptionSpec(4, "encoder layers"),
    "heads": OptionSpec(4, "attention heads (must divide d_model)"),
    "ff_dim": OptionSpec(256, "feed-forward width of each layer"),
    "dropout": OptionSpec(0.1, "dropout in the encoder and on the token embeddings"),
    "pooling": OptionSpec("mean", "mean over tokens or a learned cls token: mean | cls", ("mean", "cls")),
    "patch": OptionSpec(1, "adjacent time columns merged into one token (must divide the image size)"),
}


def build_transformer(embedding_dim: int, image_size: int, **options: Any):
    name = "transformer"
    _check_dims(name, embedding_dim, image_size)
    o = resolve_options(name, TRANSFORMER_OPTIONS, options)
    _positive(name, o, "d_model", "layers", "heads", "ff_dim", "patch")
    _fraction(name, "dropout", o["dropout"])
    _require(o["d_model"] % o["heads"] == 0, name,
             f"heads ({o['heads']}) must divide d_model ({o['d_model']})")
    _require(image_size % o["patch"] == 0, name,
             f"patch ({o['patch']}) must divide the image size ({image_size})")
    from sd_backbones.networks import ColumnTransformer

    return ColumnTransformer(embedding_dim, image_size, **o)


# -- eegnet -----------------------------------------------------------------------------------

EEGNET_OPTIONS = {
    "f1": OptionSpec(8, "temporal filters"),
    "depth": OptionSpec(2, "spatial (frequency) filters per temporal filter"),
    "f2": OptionSpec(16, "pointwise filters of the separable conv"),
    "kernel": OptionSpec(31, "temporal kernel length along the time axis (odd)"),
    "dropout": OptionSpec(0.25, "dropout after each block"),
}


def build_eegnet(embedding_dim: int, image_size: int, **options: Any):
    name = "eegnet"
    _check_dims(name, embedding_dim, image_size)
    o = resolve_options(name, EEGNET_OPTIONS, options)
    _positive(name, o, "f1", "depth", "f2", "kernel")
    _require(o["kernel"] % 2 == 1, name, f"option kernel must be odd, got {o['kernel']}")
    _fraction(name, "dropout", o["dropout"])
    _require(image_size >= 4, name, f"image_size must be at least 4, got {image_size}")
    from sd_backbones.networks import EEGNet

    return EEGNet(embedding_dim, image_size, **o)


# -- resnet18 ---------------------------------------------------------------------------------

RESNET18_OPTIONS = {
    "width": OptionSpec(64, "channels of the first stage (64 = standard ResNet-18; stages use ×1, ×2, ×4, ×8)"),
    "stem": OptionSpec("imagenet", "imagenet: 7×7 stride-2 conv + max-pool; small: 3×3 stride-1 conv "
                       "(for small images)", ("imagenet", "small")),
}


def build_resnet18(embedding_dim: int, image_size: int, **options: Any):
    name = "resnet18"
    _check_dims(name, embedding_dim, image_size)
    o = resolve_options(name, RESNET18_OPTIONS, options)
    _positive(name, o, "width")
    from sd_backbones.networks import ResNet18

    return ResNet18(embedding_dim, **o)


# -- the hook ---------------------------------------------------------------------------------

BUILDERS: dict[str, tuple[Callable[..., Any], str, dict[str, OptionSpec]]] = {
    "cnn_light": (build_cnn_light, "three conv/BN/act/max-pool stages and an MLP (the original default)",
                  CNN_LIGHT_OPTIONS),
    "transformer": (build_transformer, "Transformer encoder over the time columns (one token per column)",
                    TRANSFORMER_OPTIONS),
    "eegnet": (build_eegnet, "EEGNet-style compact CNN: temporal, depthwise frequency and separable convs",
               EEGNET_OPTIONS),
    "resnet18": (build_resnet18, "ResNet-18 (BasicBlock, [2, 2, 2, 2]) for one-channel images",
                 RESNET18_OPTIONS),
}


@hookimpl
def sd_backbones() -> list[BackboneSpec]:
    return [BackboneSpec(name, build, description, dict(options))
            for name, (build, description, options) in BUILDERS.items()]
