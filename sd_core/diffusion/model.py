"""The denoiser (UNet + conditioning), the optional caption encoder, and loading a finished run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sd_core.diffusion.conditioning import Conditioning
from sd_core.diffusion.labels import LabelSpec
from sd_core.errors import ConfigError, SdError

UNET_DIR, COND_DIR, SCHEDULER_DIR, LABELS = "unet", "conditioning", "scheduler", "labels.json"


def build_unet(model_cfg: Mapping[str, Any], image_size: int, where: str = "[model]"):
    """A one-channel ``UNet2DModel`` with identity class embedding (see conditioning)."""
    from diffusers import UNet2DModel

    if model_cfg.get("pretrained"):
        return load_pretrained_unet(Path(model_cfg["pretrained"]), image_size, where)
    channels = tuple(int(c) for c in model_cfg["block_out_channels"])
    patch = int(model_cfg.get("patch_size", 1))
    n = len(channels)
    attn = bool(model_cfg["attention"])
    down = ["DownBlock2D"] * n
    up = ["UpBlock2D"] * n
    if attn:
        down[-1] = "AttnDownBlock2D"
        up[0] = "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=image_size // patch, in_channels=patch * patch, out_channels=patch * patch,
        block_out_channels=channels,
        layers_per_block=int(model_cfg["layers_per_block"]), down_block_types=tuple(down),
        up_block_types=tuple(up), norm_num_groups=int(model_cfg["norm_num_groups"]),
        attention_head_dim=min(channels[-1], 32), add_attention=attn, class_embed_type="identity",
    )


def load_pretrained_unet(path: Path, image_size: int, where: str = "[model] pretrained"):
    """A local UNet2DModel saved with ``save_pretrained``; its class embedding becomes identity."""
    from diffusers import UNet2DModel

    if not (path / "config.json").is_file():
        raise ConfigError(f"{where}: {path} is not a folder written by save_pretrained "
                          "(no config.json); give a local UNet2DModel folder or \"\"")
    import json

    try:
        channels = int(json.loads((path / "config.json").read_text(encoding="utf-8")).get("in_channels", 1))
        patch = max(1, int(round(channels ** 0.5)))
        unet = UNet2DModel.from_pretrained(str(path), class_embed_type="identity", num_class_embeds=None,
                                           sample_size=image_size // patch, low_cpu_mem_usage=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot load a UNet2DModel from {path} ({exc})") from None
    if unet.config.in_channels != unet.config.out_channels or patch_size(unet) is None:
        raise ConfigError(f"{where}: {path} has {unet.config.in_channels} input and "
                          f"{unet.config.out_channels} output channels; spectrograms need 1 and 1 "
                          "(or p² and p² for patches of p×p pixels)")
    return unet


def time_embed_dim(unet) -> int:
    return int(unet.time_embedding.linear_2.out_features)


def patch_size(unet) -> int | None:
    """p of a UNet working on p×p patches of a one-channel image (p² channels), else None."""
    p = int(round(unet.config.in_channels ** 0.5))
    return p if p * p == unet.config.in_channels else None


class Denoiser(nn.Module):
    """What is trained: the UNet and the conditioning module together.

    With ``patch_size`` p > 1 the UNet sees the image as p×p patches stacked as p² channels
    (pixel unshuffle) at 1/p of the size, and its output is put back (pixel shuffle): the same
    model on a 64×64 image costs about what it costs on 32×32.
    """

    def __init__(self, unet, cond: Conditioning) -> None:
        super().__init__()
        self.unet = unet
        self.cond = cond
        self.patch = patch_size(unet) or 1

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size) * self.patch

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: Mapping[str, torch.Tensor],
                text: torch.Tensor | None = None) -> torch.Tensor:
        p = self.patch
        if p > 1:
            x = nn.functional.pixel_unshuffle(x, p)
        out = self.unet(x, t, class_labels=self.cond(labels, text)).sample
        return nn.functional.pixel_shuffle(out, p) if p > 1 else out


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
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: cannot load a text encoder from {path} ({exc})") from None
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


def check_run(folder: Path) -> LabelSpec:
    """The labels of a finished run; a clear error for anything else."""
    if not folder.is_dir():
        raise SdError(f"run folder {folder} does not exist; give a folder written by `sd diffusion train`")
    missing = [p for p in (UNET_DIR, COND_DIR, SCHEDULER_DIR, LABELS) if not (folder / p).exists()]
    if missing:
        raise SdError(f"{folder} is not a finished diffusion run (missing {', '.join(missing)}); "
                      "train one with `sd diffusion train cfg.toml`, or finish it with --resume")
    return LabelSpec.load(folder / LABELS)


def load_run(folder: Path, device: str | torch.device = "cpu") -> Run:
    """Load UNet (EMA weights), conditioning, scheduler config and labels of a run (no pickle)."""
    import json

    from diffusers import UNet2DModel

    spec = check_run(folder)
    try:  # safetensors only: diffusers never falls back to a pickled .bin here
        unet = UNet2DModel.from_pretrained(str(folder / UNET_DIR), use_safetensors=True)
    except Exception as exc:  # damaged weights or config (safetensors has its own error types)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SdError(f"{folder / UNET_DIR}: cannot load the UNet ({text})") from None
    cond = Conditioning.load(folder / COND_DIR)
    model = Denoiser(unet, cond).to(device).eval()
    spath = folder / SCHEDULER_DIR / "scheduler_config.json"
    try:
        sched = json.loads(spath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SdError(f"{spath}: cannot be read ({exc})") from None
    text = None
    if spec.text_encoder:
        text = TextEncoder(Path(spec.text_encoder), where=f"{folder / LABELS}: text_encoder")
    return Run(folder, spec, model, sched, text)
