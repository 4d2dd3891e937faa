"""Feature spaces of ``sd evaluate``: the context extractors are built with, and the built-ins.

A feature extractor (``FeatureExtractorSpec``, hook ``sd_feature_extractors``) is built once
per evaluation with a :class:`FeatureContext` and then maps float image batches (B, 1, S, S) in
[-1, 1] to (B, D) features. The core registers two:

- ``classifier``: the backbone embedding of a classifier trained on real data (``--classifier
  RUN``, or one trained on the real train split at the evaluation size);
- ``bandpower``: per channel strip, the mean log power (grey level) in the delta, theta, alpha,
  beta and gamma bands, read through the log-frequency rows and the sampling rate recorded in
  the real folder's ``preprocess.json`` (see :mod:`sd_core.evaluate.bandpower`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from sd_core.errors import SdError


@dataclass
class FeatureContext:
    """What an extractor may use.

    image_size: S, the size every image is compared at (the generated set's).
    params:     the real folder's preprocessing parameters (``preprocess.json``), or None.
    seed:       the evaluation's seed.
    """

    image_size: int
    params: Mapping[str, Any] | None
    seed: int = 0
    make_classifier: Callable[[], Any] | None = None
    _classifier: Any = field(default=None, repr=False)

    def classifier(self):
        """The real-trained classifier (:class:`sd_core.evaluate.runs.Classifier`), made on
        first use."""
        if self._classifier is None:
            if self.make_classifier is None:
                raise SdError("no real-trained classifier in this evaluation")
            self._classifier = self.make_classifier()
        return self._classifier


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] back to uint8 (exact for images that came from uint8)."""
    return ((images.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def build_classifier_features(ctx: FeatureContext):
    clf = ctx.classifier()

    def extract(images: torch.Tensor) -> np.ndarray:
        return clf.embed(as_uint8(images))

    return extract


def build_bandpower_features(ctx: FeatureContext):
    from sd_core.evaluate.bandpower import band_features, geometry

    if not ctx.params:
        raise SdError("the real folder has no preprocess.json parameters (fs, nsamps, resolution, "
                      "channels), so image rows cannot be read as frequencies")
    geo = geometry(ctx.params, ctx.image_size)

    def extract(images: torch.Tensor) -> np.ndarray:
        return band_features(as_uint8(images)[:, 0].numpy(), geo)

    return extract


def extract(fn: Callable, images_u8: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Run an extractor over uint8 images (N, 1, S, S) in batches; (N, D) float64."""
    from sd_core.data.images import to_float

    parts = []
    for i in range(0, len(images_u8), batch):
        out = fn(to_float(images_u8[i:i + batch]))
        out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        parts.append(out.reshape(len(out), -1).astype(np.float64))
    if not parts:
        return np.zeros((0, 0))
    return np.concatenate(parts)
