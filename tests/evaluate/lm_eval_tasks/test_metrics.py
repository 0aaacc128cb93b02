"""ttl.evaluate.lm_eval_tasks.metrics against independent computations (scikit-learn, SciPy, by hand)."""

import math

import pytest

from ttl.evaluate.lm_eval_tasks.metrics import macro_f1, mean_squared_error, pearson

sklearn_metrics = pytest.importorskip("sklearn.metrics")
stats = pytest.importorskip("scipy.stats")


def test_macro_f1_is_sklearn_over_the_gold_labels():
    golds = ["Sim", "Sim", "Não", "Não", "Não", "Sim", "Não"]
    preds = ["Sim", "[invalid]", "Não", "Sim", "Não", "Sim", "[invalid]"]
    items = list(zip(golds, preds, strict=True))
    # The Portuguese harness: labels = the gold labels, so "[invalid]" is wrong but no class.
    expected = sklearn_metrics.f1_score(golds, preds, labels=sorted(set(golds)), average="macro")
    assert macro_f1(items) == pytest.approx(expected)
    # By hand: Sim tp 2 fp 1 fn 1 -> 4/6; Não tp 2 fp 0 fn 2 -> 4/6.
    assert macro_f1(items) == pytest.approx(2 / 3)


def test_macro_f1_of_a_constant_answer_is_the_card_s_floor():
    # Always "Não": F1(Não) / 2, F1(Sim) being 0. On 650 pairs (the size of the Hub's FAQuAD-NLI
    # test split) split 510 / 140 this is 43.97, the card's FAQuAD NLI score of most models.
    items = [("Não", "Não")] * 510 + [("Sim", "Não")] * 140
    assert macro_f1(items) == pytest.approx((2 * 510 / (2 * 510 + 140)) / 2)
    assert round(100 * macro_f1(items), 2) == 43.97


def test_pearson_is_the_absolute_scipy_correlation_and_zero_when_undefined():
    golds = [4.5, 1.0, 3.2, 2.8, 5.0, 1.5]
    preds = [2.0, 4.0, 3.0, 3.5, 1.0, 5.0]  # negatively correlated
    r = stats.pearsonr(golds, preds)[0]
    assert r < 0
    assert pearson(list(zip(golds, preds, strict=True))) == pytest.approx(abs(r))
    assert pearson([(g, 5.0) for g in golds]) == 0.0   # constant predictions (the fallback 5.0)
    assert not math.isnan(pearson([(1.0, 2.0)]))


def test_mean_squared_error_is_sklearn():
    golds, preds = [4.5, 1.0, 3.2], [4.0, 5.0, 3.2]
    expected = sklearn_metrics.mean_squared_error(golds, preds)
    assert mean_squared_error(list(zip(golds, preds, strict=True))) == pytest.approx(expected)
