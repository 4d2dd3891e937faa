"""Labels → the UNet's class-conditioning vector.

Every condition contributes one vector of the UNet's time-embedding size D:

- a classification task: ``nn.Embedding(num_classes + 1, D)``; index ``num_classes`` is the null
  token (a missing label, a label dropped for classifier-free guidance, or "unconditional");
- a regression task (age): the standardised value → sinusoidal features → MLP; a learned null
  vector stands for a missing or dropped value (NaN);
- optionally a caption embedding from a frozen text encoder → linear; NaN rows are null.

The vectors are summed and passed through SiLU → Linear; the result goes to the UNet as
``class_labels`` (``class_embed_type="identity"``), where it is added to the time embedding.

Labels are given per condition as tensors: class indices with -1 (``MISSING_CLASS``) for null,
or standardised floats with NaN for null. The module is saved as safetensors plus a JSON of its
constructor arguments, so loading it needs no unpickling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

WEIGHTS = "conditioning.safetensors"
CONFIG = "config.json"


class Conditioning(ModelMixin, ConfigMixin):
    """Labels (and caption embeddings) → the network's conditioning vector.

    A diffusers ``ModelMixin``, so that a run folder loads as a diffusers pipeline
    (``sd_core.diffusion.pipeline``); saved as ``conditioning.safetensors`` + ``config.json``.
    ``classes`` (class values in index order per classification condition) and ``stats`` (mean
    and std per regression condition) let the pipeline turn raw label values into its inputs.
    """

    config_name = CONFIG

    @register_to_config
    def __init__(self, categorical: Mapping[str, int], continuous: list[str] | tuple[str, ...],
                 dim: int, text_dim: int = 0, frequencies: int = 8,
                 classes: Mapping[str, list[str]] | None = None,
                 stats: Mapping[str, list[float]] | None = None) -> None:
        super().__init__()
        self.categorical = dict(categorical)
        self.continuous = list(continuous)
        self.embeds = nn.ModuleDict({n: nn.Embedding(k + 1, dim) for n, k in self.categorical.items()})
        self.register_buffer("freqs", 2.0 ** torch.linspace(-2, 4, frequencies) * math.pi, persistent=False)
        self.numeric = nn.ModuleDict({n: nn.Sequential(nn.Linear(2 * frequencies + 1, dim), nn.SiLU(),
                                                       nn.Linear(dim, dim)) for n in self.continuous})
        self.numeric_null = nn.ParameterDict({n: nn.Parameter(torch.randn(dim) * 0.02) for n in self.continuous})
        self.text_proj = nn.Linear(text_dim, dim) if text_dim else None
        self.text_null = nn.Parameter(torch.randn(dim) * 0.02) if text_dim else None
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))

    @property
    def names(self) -> list[str]:
        return [*self.categorical, *self.continuous]

    def forward(self, labels: Mapping[str, torch.Tensor], text: torch.Tensor | None = None) -> torch.Tensor:
        total = None
        for name, k in self.categorical.items():
            idx = labels[name].long()
            idx = torch.where((idx < 0) | (idx >= k), torch.full_like(idx, k), idx)
            v = self.embeds[name](idx)
            total = v if total is None else total + v
        for name in self.continuous:
            z = labels[name].float()
            null = torch.isnan(z)
            z = torch.nan_to_num(z, nan=0.0)[:, None]
            feats = torch.cat([z, torch.sin(z * self.freqs), torch.cos(z * self.freqs)], dim=1)
            v = self.numeric[name](feats)
            v = torch.where(null[:, None], self.numeric_null[name].expand_as(v), v)
            total = v if total is None else total + v
        if self.text_proj is not None:
            if text is None:
                raise ValueError("this model is conditioned on captions: give their embeddings")
            text = text.float()
            null = torch.isnan(text).any(dim=1)
            v = self.text_proj(torch.nan_to_num(text, nan=0.0))
            v = torch.where(null[:, None], self.text_null.expand_as(v), v)
            total = v if total is None else total + v
        if total is None:
            raise ValueError("no conditions")
        return self.out(total)

    def null_labels(self, n: int, device=None) -> dict[str, torch.Tensor]:
        """Labels that are all null (the unconditional branch of guidance)."""
        out = {k: torch.full((n,), -1, dtype=torch.long, device=device) for k in self.categorical}
        out.update({k: torch.full((n,), math.nan, device=device) for k in self.continuous})
        return out

    # -- saving without pickle -------------------------------------------------------------

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        (folder / CONFIG).write_text(self.to_json_string())

    def save_pretrained(self, save_directory, **kwargs) -> None:  # what diffusers pipelines call
        self.save(Path(save_directory))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> Conditioning:
        """Load from a local folder (what diffusers pipelines call); ``torch_dtype`` is honoured,
        other loading options do not apply to this small module."""
        module = cls.load(Path(pretrained_model_name_or_path))
        dtype = kwargs.get("torch_dtype")
        return module.to(dtype) if isinstance(dtype, torch.dtype) else module

    @classmethod
    def load(cls, folder: Path) -> Conditioning:
        from sd_core.diffusion.run_config import check_conditioning_config
        from sd_core.errors import SdError
        from sd_core.runs.safe_state import load_tensors

        path = folder / CONFIG
        try:
            config = check_conditioning_config(json.loads(path.read_text(encoding="utf-8")), path)
            module = cls(**{k: v for k, v in config.items() if not k.startswith("_")})
        except FileNotFoundError:
            raise SdError(f"{path} is missing") from None
        except (OSError, ValueError, TypeError) as exc:
            raise SdError(f"{path}: not a conditioning config written by sd ({exc})") from None
        try:
            module.load_state_dict(load_tensors(folder / WEIGHTS))
            module.eval()
        except RuntimeError as exc:
            raise SdError(f"{folder / WEIGHTS}: does not match {path} "
                          f"({str(exc).strip().splitlines()[0]})") from None
        return module
