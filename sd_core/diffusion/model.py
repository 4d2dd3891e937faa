"""The denoiser (the kind's network + conditioning), the optional caption encoder, and loading a
finished run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sd_core.data.labels import LabelSpec
from sd_core.diffusion.conditioning import Conditioning
from sd_core.errors import ConfigError, SdError

UNET_DIR, COND_DIR, SCHEDULER_DIR, LABELS = "unet", "conditioning", "scheduler", "labels.json"


MODEL_JSON = "model.json"


def build_unet(model_cfg: Mapping[str, Any], image_size: int, where: str = "[model]"):
    """A one-channel ``UNet2DModel`` (see :mod:`sd_core.diffusion.kinds.unet`)."""
    from sd_core.diffusion.kinds.unet import build_unet as build

    return build(model_cfg, image_size, where)


def time_embed_dim(unet) -> int:
    from sd_core.diffusion.kinds.unet import time_embed_dim as dim

    return dim(unet)


class Denoiser(nn.Module):
    """What is trained: the kind's network and the conditioning module together.

    ``network`` is a :class:`sd_core.diffusion.kinds.base.DenoisingNetwork` (a bare UNet2DModel
    is taken as the ``unet`` kind's); the conditioning vector of the labels is its ``cond``.
    """

    def __init__(self, network, cond: Conditioning) -> None:
        super().__init__()
        from sd_core.diffusion.kinds.base import DenoisingNetwork

        if not isinstance(network, DenoisingNetwork):
            from sd_core.diffusion.kinds.unet import UNetNetwork

            network = UNetNetwork(network)
        self.network = network
        self.cond = cond
        # checkpoints of sd before model kinds held the UNet as "unet.*"
        self._register_load_state_dict_pre_hook(_legacy_keys)

    @property
    def image_size(self) -> int:
        return self.network.image_size

    @property
    def caption_encoder(self):
        """What encodes this model's captions at generation: the network's own text encoder, or None
        (then the run's ``text_encoder``, if any, does)."""
        return self.network if getattr(self.network, "uses_context", False) else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: Mapping[str, torch.Tensor],
                text: torch.Tensor | None = None) -> torch.Tensor:
        if getattr(self.network, "uses_context", False):  # captions go to the network's cross-attention
            return self.network(x, t, self.cond(labels, None), context=text)
        return self.network(x, t, self.cond(labels, text))


def _legacy_keys(state_dict, prefix, *args) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "unet.")]:
        state_dict[prefix + "network." + key[len(prefix):]] = state_dict.pop(key)


def _check_encoder_folder(path: Path, where: str) -> None:
    """A text encoder folder holds safetensors weights and no custom code (``auto_map`` in its
    configs would name Python modules; ``*.bin`` weights are pickles): refuse either in one line."""
    import json

    for name in ("config.json", "tokenizer_config.json"):
        try:
            cfg = json.loads((path / name).read_text(encoding="utf-8")) if (path / name).is_file() else {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: {path / name} cannot be read ({exc})") from None
        if isinstance(cfg, dict) and "auto_map" in cfg:
            raise ConfigError(f"{where}: {path / name} names custom code (auto_map); sd loads no code from a "
                              "model folder: use a standard transformers architecture")
    if not any(path.glob("*.safetensors")):
        raise ConfigError(f"{where}: {path} has no .safetensors weights; sd does not unpickle .bin weights "
                          "(save the model with save_pretrained(safe_serialization=True))")


class TextEncoder:
    """A frozen local text encoder: mean-pooled last hidden state of a transformers model."""

    def __init__(self, path: Path, where: str = "[model] text_encoder") -> None:
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ConfigError(f"{where}: caption conditioning needs the transformers package "
                              "(pip install transformers), or set text_encoder = \"\"") from None
        if not path.is_dir():
            raise ConfigError(f"{where}: {path} is not a folder; give a local text encoder "
                              "folder (model and tokenizer saved with save_pretrained)")
        _check_encoder_folder(path, where)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False,
                                                   use_safetensors=True).eval()
        except Exception as exc:  # noqa: BLE001  (transformers raises many kinds; none may escape as a traceback)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{where}: cannot load a text encoder from {path} ({text})") from None
        self.path = path
        self.dim = int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), batch_size):
            tok = self.tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                 max_length=77, return_tensors="pt")
            hidden = self.model(**tok).last_hidden_state.float()
            mask = tok["attention_mask"][..., None].float()
            out.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
        return torch.cat(out) if out else torch.zeros(0, self.dim)


@dataclass
class Run:
    """A finished training run, ready to sample from."""

    folder: Path
    spec: LabelSpec
    model: Denoiser
    scheduler_config: dict
    text: TextEncoder | None
    kind: str = "unet"


def run_kind(folder: Path) -> dict[str, Any]:
    """``model.json`` of a run: its kind, options and network folder (``unet`` for runs of an sd
    before model kinds, which have no model.json)."""
    import json

    path = folder / MODEL_JSON
    if not path.exists():
        return {"kind": "unet", "folder": UNET_DIR, "options": {}}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(info, dict) and isinstance(info.get("kind"), str)
                and isinstance(info.get("folder"), str) and "/" not in info["folder"]):
            raise ValueError("expected kind and folder")
    except (OSError, ValueError) as exc:
        raise SdError(f"{path}: not a model description written by sd ({exc})") from None
    return info


def check_run(folder: Path) -> LabelSpec:
    """The labels of a finished run; a clear error for anything else."""
    if not folder.is_dir():
        raise SdError(f"run folder {folder} does not exist; give a folder written by `sd diffusion train`")
    net = run_kind(folder)["folder"] if (folder / LABELS).exists() else UNET_DIR
    missing = [p for p in (net, COND_DIR, SCHEDULER_DIR, LABELS) if not (folder / p).exists()]
    if missing:
        raise SdError(f"{folder} is not a finished diffusion run (missing {', '.join(missing)}); "
                      "train one with `sd diffusion train cfg.toml`, or finish it with --resume")
    return LabelSpec.load(folder / LABELS)


def load_network(folder: Path, kind: str, registry: Any = None):
    """The network of a kind from its folder (safetensors, no pickle); clear errors."""
    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    spec = registry.diffusion_model(kind)
    try:
        return spec.load(folder)
    except SdError:
        raise
    except Exception as exc:  # damaged weights or config (safetensors has its own error types)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SdError(f"{folder}: cannot load the {kind} network ({text})") from None


def load_run(folder: Path, device: str | torch.device = "cpu", registry: Any = None) -> Run:
    """Load the network (EMA weights), conditioning, scheduler config and labels of a run."""
    import json

    from sd_core.diffusion.run_config import check_network_size, check_scheduler_config
    from sd_core.errors import PluginError

    spec = check_run(folder)
    info = run_kind(folder)
    net_config = folder / info["folder"] / "config.json"
    if net_config.is_file():
        try:
            check_network_size(json.loads(net_config.read_text(encoding="utf-8")), net_config)
        except (OSError, ValueError) as exc:
            raise SdError(f"{net_config}: cannot be read ({exc})") from None
    try:
        network = load_network(folder / info["folder"], info["kind"], registry)
    except PluginError as exc:  # an unknown kind: say which file names it
        raise PluginError(f"{folder / MODEL_JSON}: {exc}") from None
    cond = Conditioning.load(folder / COND_DIR)
    model = Denoiser(network, cond).to(device).eval()
    spath = folder / SCHEDULER_DIR / "scheduler_config.json"
    try:
        sched = json.loads(spath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SdError(f"{spath}: cannot be read ({exc})") from None
    check_scheduler_config(sched, spath)
    text = None
    if spec.text_encoder:
        text = TextEncoder(Path(spec.text_encoder), where=f"{folder / LABELS}: text_encoder")
    return Run(folder, spec, model, sched, text, info["kind"])
