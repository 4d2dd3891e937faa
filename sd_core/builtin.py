"""The core's own contributions, registered like any plugin under the name ``sd-core``.

Metrics are backed by torchmetrics, imported only when a metric is built.
"""

from __future__ import annotations

from sd_core import hookimpl
from sd_core.specs import CLASSIFICATION, REGRESSION, MetricSpec


def _accuracy(num_classes: int):
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="micro")


def _balanced_accuracy(num_classes: int):
    # balanced accuracy is the mean of per-class recalls: macro-averaged recall
    from torchmetrics.classification import MulticlassRecall

    return MulticlassRecall(num_classes=num_classes, average="macro")


def _macro_f1(num_classes: int):
    from torchmetrics.classification import MulticlassF1Score

    return MulticlassF1Score(num_classes=num_classes, average="macro")


def _auroc(num_classes: int):
    from torchmetrics.classification import MulticlassAUROC

    return MulticlassAUROC(num_classes=num_classes, average="macro")


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
