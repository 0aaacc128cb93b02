"""ttl.evaluate.report: evaluation rows, evaluation.csv and the model card's table."""

import math

from ttl.evaluate import EvaluationRow, evaluations_table, read_csv, write_csv


def test_evaluations_table_has_the_model_card_format():
    rows = [
        EvaluationRow(checkpoint="a", tokens=819_200_000, perplexity=24.519, energy_kwh=15.5,
                      emissions_kg_co2eq=5.6),
        {"tokens": 3_751_936_000, "perplexity": 16.414, "energy_kwh": 0.000123},
        EvaluationRow(checkpoint="hub", tokens=None, perplexity=30.0),
    ]
    assert evaluations_table(rows) == (
        "| Processed Tokens | Perplexity | Energy Consumption (kWh) | Emissions (KgCO2eq) |\n"
        "|------------------|------------|--------------------------|---------------------|\n"
        "| 819.2M | 24.52 | 15.50 | 5.60 |\n"
        "| 3.8B | 16.41 | 0.00012 | - |\n"
        "| - | 30.00 | - | - |\n"
    )


def test_csv_round_trip_keeps_unknown_values_unknown(tmp_path):
    rows = [EvaluationRow(checkpoint="runs/x/step-5", step=5, tokens=20480, perplexity=123.456789,
                          loss=math.log(123.456789), eval_tokens=1000, method="sliding", seq_len=128,
                          stride=64, val_ppl=None, energy_kwh=None, emissions_kg_co2eq=1.5e-7)]
    assert read_csv(write_csv(rows, tmp_path / "evaluation.csv")) == rows
