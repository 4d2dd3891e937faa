"""A finished diffusion run folder as a diffusers pipeline.

``sd diffusion train`` writes ``RUN/model_index.json`` next to the components diffusers loads
with ``from_pretrained``: the network (``unet/`` UNet2DModel, ``unet/`` UNet2DConditionModel with
``vae/`` AutoencoderKL, or ``transformer/`` SD3Transformer2DModel, by model kind), ``conditioning/`` (:class:`Conditioning`, a diffusers
``ModelMixin``) and ``scheduler/`` (the DDPM training schedule). So::

    from sd_core.diffusion.pipeline import SpectrogramPipeline
    pipe = SpectrogramPipeline.from_pretrained(RUN)   # model_index.json checked first
    # or, once this module is imported (it registers the class with diffusers):
    # DiffusionPipeline.from_pretrained(RUN)            # no trust_remote_code, no custom_pipeline
    images = pipe({"health": "PD", "age": 70}, num_images=4, seed=0).images

samples the same images as ``sd generate RUN --condition health=PD,age=70 --n 4 --seed 0`` (same
solver, steps, guidance and batch size).

Conditioning inputs (``labels``), one entry per condition of the run (``conditioning/config.json``
lists them: ``classes`` per classification condition, ``stats`` = mean and std per regression
condition):

- a classification condition takes a class value as the training metadata writes it (``"PD"``);
- a regression condition (age) takes a number in its own unit (years); the pipeline standardises it;
- ``None`` or ``""`` (or leaving the condition out) is the null token: the model decides. Unlike
  ``sd generate``, which draws a missing age from training subjects, the pipeline draws nothing;
- each value is a scalar (the same for every image) or a list of ``num_images`` values;
- a ``stable-diffusion`` run (``text_encoder/`` and ``tokenizer/`` components) takes ``prompt``, a
  string for every image or a list of ``num_images`` (none: the empty prompt, its null), encoded
  by its own text encoder as ``sd generate --prompt`` does;
- a run trained with a separate caption encoder (``[model] text_encoder``) takes ``caption_embeds``, (N, H) float
  embeddings of that encoder (mean-pooled last hidden state, as ``sd_core.diffusion.model.
  TextEncoder.encode`` computes them); NaN rows are null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from sd_core.diffusion.conditioning import Conditioning
from sd_core.diffusion.model_index import MODEL_INDEX, check_model_index
from sd_core.errors import SdError

#: the run sub-folders a pipeline takes its network from (the built-in kinds' folders)
NETWORK_FOLDERS = ("unet", "transformer")


def write_model_index(run: Path, folder: str) -> bool:
    """Write ``RUN/model_index.json`` for a network in ``RUN/<folder>``; False (and nothing
    written) for a plugin kind whose folder is not one the pipeline takes."""
    import diffusers

    from sd_core.runs.files import atomic_write_text

    if folder not in NETWORK_FOLDERS:
        return False
    network = json.loads((run / folder / "config.json").read_text(encoding="utf-8"))["_class_name"]
    index = {"_class_name": SpectrogramPipeline.__name__, "_diffusers_version": diffusers.__version__,
             "conditioning": [Conditioning.__module__, Conditioning.__name__],
             "scheduler": ["diffusers", "DDPMScheduler"], folder: ["diffusers", network]}
    if folder == "unet" and (run / "vae" / "config.json").is_file():  # latent-unet, stable-diffusion
        index["vae"] = ["diffusers", "AutoencoderKL"]
    if folder == "unet" and (run / "text_encoder" / "config.json").is_file():  # stable-diffusion
        text = json.loads((run / "text_encoder" / "config.json").read_text(encoding="utf-8"))
        tok = json.loads((run / "tokenizer" / "tokenizer_config.json").read_text(encoding="utf-8"))
        index["text_encoder"] = ["transformers", (text.get("architectures") or ["CLIPTextModel"])[0]]
        index["tokenizer"] = ["transformers", tok.get("tokenizer_class") or "CLIPTokenizer"]
    atomic_write_text(run / MODEL_INDEX, json.dumps(index, indent=2) + "\n")
    return True


class SpectrogramPipeline(DiffusionPipeline):
    """Labelled spectrograms from an sd diffusion run (see the module's documentation)."""

    _optional_components = ["unet", "transformer", "vae", "text_encoder", "tokenizer"]

    def __init__(self, conditioning: Conditioning, scheduler, unet=None, transformer=None, vae=None,
                 text_encoder=None, tokenizer=None) -> None:
        super().__init__()
        self.register_modules(conditioning=conditioning, scheduler=scheduler, unet=unet, transformer=transformer,
                              vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a run folder after checking its ``model_index.json``
        (:mod:`sd_core.diffusion.model_index`); remote or custom code is refused."""
        if kwargs.get("trust_remote_code") or kwargs.get("custom_pipeline") is not None:
            raise SdError("SpectrogramPipeline loads no code from a run folder: leave out trust_remote_code "
                          "and custom_pipeline")
        if not Path(pretrained_model_name_or_path).is_dir():
            raise SdError(f"{pretrained_model_name_or_path}: not a run folder")
        check_model_index(Path(pretrained_model_name_or_path))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def denoiser(self):
        """The network and conditioning as sd's sampling loop calls them."""
        from sd_core.diffusion.model import Denoiser

        if self.unet is not None and self.text_encoder is not None:
            from sd_core.diffusion.kinds.pretrained import PipelineNetwork

            network = PipelineNetwork(self.unet, self.vae, self.text_encoder, self.tokenizer)
        elif self.unet is not None and self.vae is not None:
            from sd_core.diffusion.kinds.latent import LatentUNetNetwork

            network = LatentUNetNetwork(self.unet, self.vae)
        elif self.unet is not None:
            from sd_core.diffusion.kinds.unet import UNetNetwork

            network = UNetNetwork(self.unet)
        elif self.transformer is not None:
            from sd_core.diffusion.kinds.dit import DiTNetwork

            network = DiTNetwork(self.transformer)
        else:
            raise SdError("this pipeline has neither a unet nor a transformer")
        return Denoiser(network, self.conditioning).eval()

    def label_inputs(self, labels: Mapping[str, Any], n: int) -> dict[str, torch.Tensor]:
        """Raw label values → class indices (-1 = null) and standardised floats (NaN = null)."""
        cfg = self.conditioning.config
        classes, stats = dict(cfg.get("classes") or {}), dict(cfg.get("stats") or {})
        names = [*cfg["categorical"], *cfg["continuous"]]
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise SdError(f"unknown condition {unknown[0]!r}; this model is conditioned on: {', '.join(names)}")
        out = {}
        for name in names:
            value = labels.get(name)
            values = list(value) if isinstance(value, (list, tuple)) else [value] * n
            if len(values) != n:
                raise SdError(f"condition {name!r} has {len(values)} values for {n} images")
            values = ["" if v is None else v for v in values]
            if name in cfg["categorical"]:
                allowed = list(classes.get(name, []))
                bad = [v for v in values if v != "" and str(v) not in allowed]
                if bad:
                    raise SdError(f"{name} = {bad[0]!r} is not one of its classes; allowed: {', '.join(allowed)}")
                out[name] = torch.tensor([allowed.index(str(v)) if v != "" else -1 for v in values],
                                         dtype=torch.long)
            else:
                mean, std = stats.get(name, (0.0, 1.0))
                out[name] = torch.tensor([(float(v) - mean) / std if v != "" else math.nan for v in values],
                                         dtype=torch.float32)
        return out

    @torch.no_grad()
    def __call__(self, labels: Mapping[str, Any] | None = None, num_images: int | None = None,
                 num_inference_steps: int = 25, guidance_scale: float = 2.0, seed: int = 0, solver: str = "dpm",
                 batch_size: int = 32, caption_embeds: torch.Tensor | None = None, output_type: str = "pil",
                 return_dict: bool = True, prompt: str | list[str] | None = None):
        """Images for ``labels``; ``output_type`` ``pil`` (grey-level images, as sd generate's PNGs),
        ``np`` (uint8 array N×S×S) or ``pt`` (float tensor N×1×S×S in [-1, 1])."""
        from PIL import Image

        from sd_core.diffusion.sampling import make_scheduler, sample, to_uint8

        labels = dict(labels or {})
        if num_images is None:
            lists = [len(v) for v in labels.values() if isinstance(v, (list, tuple))]
            num_images = lists[0] if lists else None
        if isinstance(prompt, (list, tuple)) and num_images is None:
            num_images = len(prompt)
        num_images = num_images or 1
        model = self.denoiser()
        if prompt is not None or model.caption_encoder is not None:
            if model.caption_encoder is None:
                raise SdError("prompt: this model is not conditioned on captions through its own text encoder")
            prompts = list(prompt) if isinstance(prompt, (list, tuple)) else [prompt or ""] * num_images
            if len(prompts) != num_images:
                raise SdError(f"{len(prompts)} prompts for {num_images} images")
            caption_embeds = model.caption_encoder.encode(prompts)
        images = sample(model, make_scheduler(solver, self.scheduler.config), self.label_inputs(labels, num_images),
                        caption_embeds, steps=num_inference_steps, guidance=guidance_scale, seed=seed,
                        batch_size=batch_size, device=self.device)
        if output_type == "pt":
            out: Any = images
        else:
            pixels = to_uint8(images).numpy()
            out = pixels if output_type == "np" else [Image.fromarray(p) for p in pixels]
        return ImagePipelineOutput(images=out) if return_dict else (out,)


def _register_with_diffusers() -> None:
    """Make ``DiffusionPipeline.from_pretrained(RUN)`` find this class once sd's pipeline module is
    imported: diffusers looks a local folder's ``_class_name`` up in its own namespace, and
    otherwise needs ``custom_pipeline`` and ``trust_remote_code=True``, which would also trust
    any module file in the folder."""
    import diffusers

    if getattr(diffusers, SpectrogramPipeline.__name__, None) is None:
        setattr(diffusers, SpectrogramPipeline.__name__, SpectrogramPipeline)


_register_with_diffusers()
