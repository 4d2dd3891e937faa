"""What plugin hooks return (the public face of :mod:`sd_core.plugins.specs`): tasks, options,
backbones, diffusion model kinds, metrics, set metrics and feature extractors."""

from sd_core.plugins.specs import (
    CANONICAL_LABELS,
    CLASSIFICATION,
    REGRESSION,
    ROW_COLUMNS,
    TASK_KINDS,
    BackboneSpec,
    DiffusionModelSpec,
    FeatureExtractorSpec,
    MetricSpec,
    OptionSpec,
    SetMetricSpec,
    TaskSpec,
)

__all__ = [
    "CANONICAL_LABELS", "CLASSIFICATION", "REGRESSION", "ROW_COLUMNS", "TASK_KINDS", "BackboneSpec",
    "DiffusionModelSpec", "FeatureExtractorSpec", "MetricSpec", "OptionSpec", "SetMetricSpec", "TaskSpec",
]
