"""Accuracy and macro-F1 (torchmetrics), and the majority-class baseline they are compared to."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from ttl.finetune.tasks import majority_label


def metric_collection(num_labels: int, prefix: str) -> MetricCollection:
    """`<prefix>acc` (plain accuracy) and `<prefix>macro_f1` as torchmetrics objects (DDP-aware)."""
    return MetricCollection(
        {
            # average="micro" is plain accuracy; torchmetrics' default for multiclass is macro.
            "acc": MulticlassAccuracy(num_labels, average="micro"),
            "macro_f1": MulticlassF1Score(num_labels, average="macro"),
        },
        prefix=prefix,
    )


def scores(predictions: list[int], targets: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 of `predictions` against `targets`.

    Macro-F1 averages the per-class F1 over the classes present in the targets or the
    predictions (a class never seen in either does not count); a class never predicted has F1 0.
    """
    preds, target = torch.tensor(predictions), torch.tensor(targets)
    return {
        "accuracy": float(multiclass_accuracy(preds, target, num_labels, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, target, num_labels, average="macro")),
    }


def majority_baseline(train_labels: list[int], test_labels: list[int], num_labels: int) -> dict:
    """Scores on test of always predicting the training split's most frequent label."""
    label = majority_label(train_labels)
    return {"label": label, **scores([label] * len(test_labels), test_labels, num_labels)}
