"""The core's own contributions, registered like any plugin under the name ``sd-core``.

Metrics are backed by torchmetrics, imported only when a metric is built. The set-level
metrics and feature extractors of ``sd evaluate`` live in ``sd_core.evaluate``, imported only
when they are used.
"""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.plugins.specs import CLASSIFICATION, REGRESSION, FeatureExtractorSpec, MetricSpec, SetMetricSpec


def _accuracy(num_classes: int):
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="micro")


def _balanced_accuracy(num_classes: int):
    """Mean recall over the classes present in the targets (as scikit-learn defines it).

    torchmetrics' macro recall also averages in a class that is absent from the targets but
    predicted (as 0), which would cap a one-class test split at 1/classes.
    """
    from torchmetrics.classification import MulticlassConfusionMatrix

    class BalancedAccuracy(MulticlassConfusionMatrix):
        def compute(self):
            cm = super().compute().double()
            support = cm.sum(1)
            present = support > 0
            return (cm.diagonal()[present] / support[present]).mean().float()

    return BalancedAccuracy(num_classes=num_classes)


def _macro_f1(num_classes: int):
    from torchmetrics.classification import MulticlassF1Score

    return MulticlassF1Score(num_classes=num_classes, average="macro")


def _auroc(num_classes: int):
    """One-vs-rest AUROC averaged over the classes present; NaN when only one class is present
    (AUROC is undefined then)."""
    import torch
    from torchmetrics.classification import MulticlassAUROC

    class AUROC(MulticlassAUROC):
        def compute(self):
            target = torch.cat(self.target) if isinstance(self.target, list) else self.target
            present = torch.unique(target[target >= 0])
            if len(present) < 2:
                return torch.tensor(float("nan"))
            if len(present) == num_classes:
                return super().compute()
            per_class = MulticlassAUROC(num_classes=num_classes, average="none")
            preds = torch.cat(self.preds) if isinstance(self.preds, list) else self.preds
            per_class.update(preds, target)
            return per_class.compute()[present].mean()

    return AUROC(num_classes=num_classes, average="macro")


def _mae(num_classes=None):
    from torchmetrics.regression import MeanAbsoluteError

    return MeanAbsoluteError()


def _r2(num_classes=None):
    from torchmetrics.regression import R2Score

    return R2Score()


@hookimpl
def sd_metrics():
    return [
        MetricSpec("accuracy", CLASSIFICATION, _accuracy, True, "fraction of correct predictions"),
        MetricSpec("balanced_accuracy", CLASSIFICATION, _balanced_accuracy, True,
                   "mean of per-class recalls (chance = 1/classes)"),
        MetricSpec("macro_f1", CLASSIFICATION, _macro_f1, True, "unweighted mean of per-class F1"),
        MetricSpec("auroc", CLASSIFICATION, _auroc, True, "one-vs-rest AUROC, macro average"),
        MetricSpec("mae", REGRESSION, _mae, False, "mean absolute error"),
        MetricSpec("r2", REGRESSION, _r2, True, "coefficient of determination"),
    ]


def _set_metric(name: str):
    def compute(real, generated, seed: int = 0):
        from sd_core.evaluate import fidelity

        return getattr(fidelity, name)(real, generated, seed)

    return compute


def _extractor(name: str):
    def build(context):
        from sd_core.evaluate import features

        return getattr(features, f"build_{name}_features")(context)

    return build


@hookimpl
def sd_set_metrics():
    return [
        SetMetricSpec("fid", _set_metric("fid"), ("fid",), False,
                      "Fréchet distance between the feature Gaussians (0 = same mean and covariance)"),
        SetMetricSpec("kid", _set_metric("kid"), ("kid", "kid_se", "kid_std"), False,
                      "kernel inception distance: unbiased MMD² (cubic kernel) over subsets, with "
                      "its standard error"),
        SetMetricSpec("prdc", _set_metric("prdc"), ("precision", "recall", "density", "coverage"), True,
                      "precision/recall and density/coverage of k-NN manifolds (k = 5, Naeem et al. 2020)"),
    ]


@hookimpl
def sd_feature_extractors():
    return [
        FeatureExtractorSpec("classifier", _extractor("classifier"),
                             "embedding of a classifier trained on real data"),
        FeatureExtractorSpec("bandpower", _extractor("bandpower"),
                             "mean log power per channel strip in the delta…gamma bands, from the "
                             "image rows and preprocess.json"),
    ]


@hookimpl
def sd_diffusion_models():
    from sd_core.diffusion.kinds import builtin_kinds

    return builtin_kinds()
