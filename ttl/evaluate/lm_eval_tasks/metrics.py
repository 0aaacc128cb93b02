"""Corpus-level metrics of the Portuguese harness, as lm-eval aggregations over the
(gold, prediction) pairs that each document's `process_results` returns.

They follow eduagarcia/lm-evaluation-harness-pt (commit ca072156), lm_eval/api/metrics.py:
`f1_macro` averages F1 over the labels that occur among the golds (a prediction outside them,
such as "[invalid]", counts as wrong but is not a class of its own); `pearsonr` reports the
absolute correlation, and 0 when it is undefined (constant predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _pairs(items: Sequence[tuple]) -> tuple[list, list]:
    golds = [gold for gold, _ in items]
    preds = [pred for _, pred in items]
    return golds, preds


def macro_f1(items: Sequence[tuple]) -> float:
    """Mean over the gold labels of 2TP / (2TP + FP + FN)."""
    golds, preds = _pairs(items)
    scores = []
    for label in set(golds):
        tp = sum(g == label and p == label for g, p in zip(golds, preds, strict=True))
        fp = sum(g != label and p == label for g, p in zip(golds, preds, strict=True))
        fn = sum(g == label and p != label for g, p in zip(golds, preds, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def pearson(items: Sequence[tuple]) -> float:
    """|Pearson correlation| of golds and predictions; 0 when either is constant."""
    golds, preds = _pairs(items)
    n = len(golds)
    if n < 2:
        return 0.0
    mean_g, mean_p = sum(golds) / n, sum(preds) / n
    cov = sum((g - mean_g) * (p - mean_p) for g, p in zip(golds, preds, strict=True))
    var_g = sum((g - mean_g) ** 2 for g in golds)
    var_p = sum((p - mean_p) ** 2 for p in preds)
    if var_g == 0 or var_p == 0:
        return 0.0
    return abs(cov / math.sqrt(var_g * var_p))


def mean_squared_error(items: Sequence[tuple]) -> float:
    """Mean of (gold - prediction)^2."""
    golds, preds = _pairs(items)
    return sum((g - p) ** 2 for g, p in zip(golds, preds, strict=True)) / len(golds) if golds else 0.0
