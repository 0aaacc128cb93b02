"""ttl.card.tables: the model card's number formats and benchmark tables from harness results."""


import json

import pytest

from ttl.card.results import HarnessRow
from ttl.card.tables import card_markdown, card_table, card_tables, format_quantity, format_tokens
from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES

PT_SCORES = {"ttl_assin2_rte": ("f1_macro", 0.5336), "ttl_assin2_sts": ("pearson", 0.0258),
             "ttl_bluex": ("acc", 0.2184), "ttl_enem_challenge": ("acc", 0.1875),
             "ttl_faquad_nli": ("f1_macro", 0.4397), "ttl_hatebr_offensive": ("f1_macro", 0.3688),
             "ttl_oab_exams": ("acc", 0.2260)}  # TTL-160m's published scores


def row(task, metric, value, step=100, tokens=819_200, shots=3, samples=50):
    return HarnessRow(checkpoint=f"runs/x/step-{step}", revision=None, step=step, tokens=tokens, task=task,
                      metric=metric, value=value, stderr=None, samples=samples, num_fewshot=shots)


def test_portuguese_table_has_the_card_columns_and_average():
    rows = [row(t, m, v) for t, (m, v) in PT_SCORES.items()]
    rows.append(row("ttl_assin2_rte", "acc", 0.9))  # other metrics of a task are not the card's
    lines = card_table(rows, CARD_TABLES["pt"]).splitlines()
    assert lines[0] == ("| Checkpoint | Processed Tokens | ASSIN2 RTE | ASSIN2 STS | BLUEX | ENEM "
                        "| FAQUAD NLI "
                        "| HateBR | OAB Exams | Average |")
    # The card's TTL-160m line: 53.36 2.58 21.84 18.75 43.97 36.88 22.60, average 28.56 (the
    # mean is 28.569: the card truncates, ttl rounds).
    assert lines[2] == "| step-100 | 819.2K | 53.36 | 2.58 | 21.84 | 18.75 | 43.97 | 36.88 | 22.60 | 28.57 |"
    assert lines[4] == "Shots: 3 / 3 / 3 / 3 / 3 / 3 / 3; questions scored: 50 / 50 / 50 / 50 / 50 / 50 / 50."


def test_missing_scores_print_a_dash_and_no_average():
    rows = [row("ttl_arc_pt", "acc_norm", 0.2615, shots=25), row("ttl_mmlu_pt", "acc", 0.2811, shots=25),
            row("ttl_arc_pt", "acc_norm", 0.30, step=200, tokens=None, shots=25)]
    lines = card_table(rows, CARD_TABLES["translated"]).splitlines()
    assert lines[0] == "| Checkpoint | Processed Tokens | ARC | HellaSwag | MMLU | TruthfulQA | Average |"
    assert lines[2] == "| step-100 | 819.2K | 26.15 | - | 28.11 | - | - |"
    assert lines[3] == "| step-200 | - | 30.00 | - | - | - | - |"
    assert card_table(rows, CARD_TABLES["tucano"]) is None


def test_card_markdown_keeps_the_tables_that_ran():
    rows = [row("ttl_calame_pt", "acc", 0.4672, shots=0), row("ttl_lambada_pt", "acc", 0.2098, shots=0)]
    text = card_markdown(rows)
    assert text.startswith("**Last-word prediction")
    assert "| step-100 | 819.2K | 46.72 | 20.98 | 33.85 |" in text
    assert "ASSIN2" not in text and "ARC" not in text
    assert card_markdown([row("ttl_enem", "acc", 0.2)]) is None  # not a card task


def test_card_tables_reads_one_step_of_a_run(tmp_path):
    results = {
        "results": {"ttl_calame_pt": {"alias": "ttl_calame_pt", "acc,none": 0.5, "acc_stderr,none": 0.1},
                    "ttl_lambada_pt": {"alias": "ttl_lambada_pt", "acc,none": 0.25, "acc_stderr,none": 0.1}},
        "n-shot": {"ttl_calame_pt": 0, "ttl_lambada_pt": 0},
        "n-samples": {"ttl_calame_pt": {"original": 3, "effective": 3},
                      "ttl_lambada_pt": {"original": 3, "effective": 3}},
        "checkpoint": {"source": "/elsewhere/run/step-150", "name": "step-150", "revision": None,
                       "step": 150, "tokens": 614_400},
    }
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "harness-step-150.json").write_text(json.dumps(results))
    text = card_tables(tmp_path, 150)
    assert "| step-150 | 614.4K | 50.00 | 25.00 | 37.50 |" in text
    assert "Shots: 0 / 0; questions scored: 3 / 3." in text
    assert card_tables(tmp_path, 100) is None


@pytest.mark.parametrize("tokens, text", [(950, "950"), (204_800, "204.8K"), (8_192_000, "8.2M"),
                                          (9_830_400_000, "9.8B"), (None, "-")])
def test_format_tokens(tokens, text):
    assert format_tokens(tokens) == text


@pytest.mark.parametrize("value, text", [(15.5, "15.50"), (0.0099, "0.0099"), (6.1e-05, "0.000061"),
                                         (0.0, "0.00"), (None, "-"), (float("nan"), "-")])
def test_format_quantity_keeps_two_significant_digits_of_small_values(value, text):
    assert format_quantity(value) == text
