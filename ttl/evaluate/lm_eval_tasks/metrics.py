"""Corpus-level metrics of the Portuguese harness, as lm-eval aggregations over the
(gold, prediction) pairs that each document's `process_results` returns.

They follow eduagarcia/lm-evaluation-harness-pt (commit ca072156), lm_eval/api/metrics.py:
`f1_macro` averages F1 over the labels that occur among the golds (a prediction outside them,
such as "[invalid]", counts as wrong but is not a class of its own); `pearsonr` reports the
absolute correlation, and 0 when it is undefined (constant predictions).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def macro_f1(items: Sequence[tuple]) -> float:
    """Mean over the gold labels of 2TP / (2TP + FP + FN)."""
    scores = []
    for label in {gold for gold, _ in items}:
        tp = sum(g == label and p == label for g, p in items)
        wrong = sum((g == label) != (p == label) for g, p in items)  # FP + FN
        scores.append(2 * tp / (2 * tp + wrong) if tp else 0.0)
    return statistics.fmean(scores) if scores else 0.0


def pearson(items: Sequence[tuple]) -> float:
    """|Pearson correlation| of golds and predictions; 0 when either is constant."""
    try:
        return abs(statistics.correlation([g for g, _ in items], [p for _, p in items]))
    except statistics.StatisticsError:  # fewer than 2 pairs, or a constant side
        return 0.0


def mean_squared_error(items: Sequence[tuple]) -> float:
    """Mean of (gold - prediction)^2."""
    return statistics.fmean((g - p) ** 2 for g, p in items) if items else 0.0
