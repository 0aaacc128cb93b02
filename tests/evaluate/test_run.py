"""python -m ttl.evaluate (ttl.evaluate.run): perplexity per checkpoint from the command line."""

import csv
import json

import pytest

from ttl.card.tables import format_quantity, format_tokens
from ttl.evaluate import read_csv, run_table
from ttl.evaluate.__main__ import main as evaluate_main

from ..conftest import run_cli


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of a markdown table's body rows."""
    lines = [line for line in markdown.strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.parametrize("args, message", [
    ([], "checkpoints is required"),
    (["checkpoints=/nonexistent/run"], "checkpoints=/nonexistent/run: no such directory"),
    (["checkpoints=x", "method=greedy"], "method='greedy': choose one of packed, sliding"),
])
def test_bad_arguments_fail_with_one_line(args, message, capsys):
    assert evaluate_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args, named", [(["checkpoints=x", "colour=red"], "colour"), (["checkpoints"], ""),
                                         (["checkpoints=x", "batch_size=abc"], "batch_size")])
def test_unknown_keys_bad_types_and_bad_overrides_are_hydras_errors_as_for_every_command(args, named, capsys):
    assert evaluate_main(args) == 1
    assert named in capsys.readouterr().err


def test_an_unreachable_hub_model_is_a_clear_error(capsys, sample_dir):
    args = ["checkpoints=nicholasKluge/TeenyTinyLlama-160m", "revisions=[step100000]",
            f"data.path={sample_dir}"]
    assert evaluate_main(args) == 2
    err = capsys.readouterr().err
    assert "checkpoints=nicholasKluge/TeenyTinyLlama-160m (revision step100000): no such local " \
           "directory, and loading it as a Hub model id failed" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_a_run_dir_from_the_command_line(quickstart_run):
    result = run_cli(["-m", "ttl.evaluate", f"checkpoints={quickstart_run}"], quickstart_run.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    out = quickstart_run / "evaluation"
    rows = read_csv(out / "evaluation.csv")
    assert [r.step for r in rows] == [50, 100, 150]
    assert [r.tokens for r in rows] == [204_800, 409_600, 614_400]
    perplexities = [r.perplexity for r in rows]
    assert perplexities[0] > perplexities[1] > perplexities[2]
    assert perplexities[-1] < perplexities[0] / 1.5
    # Same data, packing and blocks as the run's validation: each checkpoint's perplexity is
    # the one the run measured on those very weights (trainer_state.json's val_ppl).
    for row in rows:
        state = json.loads((quickstart_run / f"step-{row.step}" / "trainer_state.json").read_text())
        assert row.perplexity == pytest.approx(state["val_ppl"], rel=1e-3), row.step
        assert row.val_ppl == state["val_ppl"]
    assert len({r.eval_tokens for r in rows}) == 1 and rows[0].eval_tokens > 1000
    assert all(r.method == "packed" and r.seq_len == 128 for r in rows)
    # The markdown table (file and stdout) agrees with the CSV, row by row.
    markdown = (out / "evaluation.md").read_text()
    assert markdown in result.stdout
    assert table_rows(markdown) == [
        [format_tokens(r.tokens), f"{r.perplexity:.2f}", format_quantity(r.energy_kwh),
         format_quantity(r.emissions_kg_co2eq)]
        for r in rows
    ]
    with open(out / "evaluation.csv", newline="") as handle:
        raw = list(csv.DictReader(handle))
    for cells, record in zip(table_rows(markdown), raw, strict=True):
        assert cells[1] == f"{float(record['perplexity']):.2f}"
    # What the model-card generator calls reads the measured CSV back.
    assert run_table(quickstart_run) == markdown
    png = (out / "perplexity.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


@pytest.mark.slow
def test_sliding_window_and_other_data_from_the_command_line(quickstart_run, sample_dir, tmp_path):
    validation = next(sample_dir.glob("validation-*.jsonl"))
    common = [f"checkpoints={quickstart_run / 'step-150'}", f"data.path={validation}", "data.split=all",
              "data.max_tokens=3000"]
    assert evaluate_main([*common, "method=sliding", "stride=64", f"output_dir={tmp_path / 's'}"]) == 0
    assert evaluate_main([*common, f"output_dir={tmp_path / 'p'}"]) == 0
    [sliding] = read_csv(tmp_path / "s" / "evaluation.csv")
    [packed] = read_csv(tmp_path / "p" / "evaluation.csv")
    assert (sliding.method, sliding.seq_len, sliding.stride, sliding.step) == ("sliding", 128, 64, 150)
    assert sliding.eval_tokens == 3000 - 1
    assert (packed.method, packed.stride, packed.eval_tokens) == ("packed", None, 24 * 127)
    # Each token scored with at least 64 tokens of context (after the first window) beats
    # blocks that restart from no context: a lower perplexity on the same text.
    assert sliding.perplexity < packed.perplexity
