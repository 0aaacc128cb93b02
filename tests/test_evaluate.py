"""ttl.evaluate: perplexity per checkpoint (CLI and functions), the model card table, lm-eval."""

import csv
import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from ttl.errors import TTLError
from ttl.evaluate import (
    EvaluationRow,
    evaluations_table,
    find_checkpoints,
    format_tokens,
    read_csv,
    rows_from_run,
    run_table,
    write_csv,
)
from ttl.evaluate.__main__ import main as evaluate_main
from ttl.evaluate.perplexity import perplexity_packed, perplexity_sliding, sliding_windows
from ttl.tables import format_quantity

from .conftest import SHARED_DATA, run_cli

TASKS_DIR = SHARED_DATA / "tasks"
requires_tasks = pytest.mark.skipif(
    not (TASKS_DIR / "enem" / "test.jsonl").is_file() or not (TASKS_DIR / "oab" / "test.jsonl").is_file(),
    reason=f"{TASKS_DIR}/enem and /oab are not available on this machine",
)


def table_rows(markdown: str) -> list[list[str]]:
    """Cells of a markdown table's body rows."""
    lines = [line for line in markdown.strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


# --- pure functions --------------------------------------------------------------------


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


@pytest.mark.parametrize("tokens, text", [(950, "950"), (204_800, "204.8K"), (8_192_000, "8.2M"),
                                          (9_830_400_000, "9.8B"), (None, "-")])
def test_format_tokens(tokens, text):
    assert format_tokens(tokens) == text


@pytest.mark.parametrize("value, text", [(15.5, "15.50"), (0.0099, "0.0099"), (6.1e-05, "0.000061"),
                                         (0.0, "0.00"), (None, "-"), (float("nan"), "-")])
def test_format_quantity_keeps_two_significant_digits_of_small_values(value, text):
    assert format_quantity(value) == text


def test_csv_round_trip_keeps_unknown_values_unknown(tmp_path):
    rows = [EvaluationRow(checkpoint="runs/x/step-5", step=5, tokens=20480, perplexity=123.456789,
                          loss=math.log(123.456789), eval_tokens=1000, method="sliding", seq_len=128,
                          stride=64, val_ppl=None, energy_kwh=None, emissions_kg_co2eq=1.5e-7)]
    assert read_csv(write_csv(rows, tmp_path / "evaluation.csv")) == rows


def test_sliding_windows_predict_every_token_once():
    windows = sliding_windows(10, seq_len=4, stride=2)
    assert windows == [(0, 4, 4), (2, 6, 2), (4, 8, 2), (6, 10, 2)]
    # The first window predicts seq_len - 1 tokens (the shift drops position 0), each later one
    # its target_len new tokens: n - 1 tokens in all.
    assert windows[0][2] - 1 + sum(t for _, _, t in windows[1:]) == 10 - 1
    with pytest.raises(TTLError, match="stride=5"):
        sliding_windows(10, seq_len=4, stride=5)


def test_checkpoints_are_sorted_by_step_number_and_read_their_state(tmp_path):
    for step in (5, 40, 100):
        export = tmp_path / f"step-{step}"
        export.mkdir()
        (export / "config.json").write_text("{}")
        (export / "trainer_state.json").write_text(json.dumps({
            "step": step, "tokens": step * 10, "val_ppl": 9.5, "wall_time_s": 1.0,
            "energy_kwh": None if step == 5 else step / 1000, "emissions_kg_co2eq": "n/a",
        }))
    (tmp_path / "step-7").mkdir()  # an export without config.json is not a checkpoint
    found = find_checkpoints(str(tmp_path))
    assert [c.step for c in found] == [5, 40, 100]
    assert [c.energy_kwh for c in found] == [None, 0.04, 0.1]
    assert all(c.emissions_kg_co2eq is None and c.tokens == c.step * 10 for c in found)
    assert evaluations_table(rows_from_run(tmp_path)).splitlines()[2] == "| 50 | 9.50 | - | - |"


def test_hub_revisions_take_their_step_from_the_name():
    found = find_checkpoints("nicholasKluge/TeenyTinyLlama-160m", ["step100000", "main"], 8192)
    assert [(c.revision, c.step, c.tokens) for c in found] == [
        ("step100000", 100_000, 819_200_000), ("main", None, None)]


# --- bad command lines: one line on stderr, exit status 2 ---------------------------------


@pytest.mark.parametrize("args, message", [
    ([], "checkpoints is required"),
    (["checkpoints=/nonexistent/run"], "checkpoints=/nonexistent/run: no such directory"),
    (["checkpoints=x", "batch_size=abc"], "batch_size='abc'"),
    (["checkpoints=x", "method=greedy"], "method='greedy': choose one of packed, sliding"),
])
def test_bad_arguments_fail_with_one_line(args, message, capsys):
    assert evaluate_main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args", [["checkpoints=x", "colour=red"], ["checkpoints"]])
def test_unknown_keys_and_bad_overrides_are_hydras_errors_as_for_every_command(args, capsys):
    assert evaluate_main(args) == 1
    assert "colour" in capsys.readouterr().err or args == ["checkpoints"]


def test_an_unreachable_hub_model_is_a_clear_error(capsys, sample_dir):
    args = ["checkpoints=nicholasKluge/TeenyTinyLlama-160m", "revisions=[step100000]",
            f"data.path={sample_dir}"]
    assert evaluate_main(args) == 2
    err = capsys.readouterr().err
    assert "checkpoints=nicholasKluge/TeenyTinyLlama-160m (revision step100000): no such local " \
           "directory, and loading it as a Hub model id failed" in err
    assert len(err.strip().splitlines()) == 1


# --- a real quickstart run ----------------------------------------------------------------


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
def test_perplexities_match_the_models_own_loss(quickstart_run):
    model = AutoModelForCausalLM.from_pretrained(quickstart_run / "step-150").eval()
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(4, 2048, (3, 128), generator=generator)
    with torch.no_grad():
        losses = [model(input_ids=b[None], labels=b[None]).loss.item() for b in blocks]
        packed = perplexity_packed(model, blocks, batch_size=2)
        # A stream that fits one window: whatever the stride, one forward pass scores it all.
        stream = blocks[0][:100]
        single = model(input_ids=stream[None], labels=stream[None]).loss.item()
        sliding = perplexity_sliding(model, stream, seq_len=128, stride=32)
        # Longer than a window: overlapping windows give every token context, yet each token once.
        long = torch.cat(list(blocks))
        overlapping = perplexity_sliding(model, long, seq_len=128, stride=64, batch_size=3)
    assert packed.tokens == 3 * 127 and packed.ppl == pytest.approx(math.exp(sum(losses) / 3), rel=1e-5)
    assert sliding.tokens == 99 and sliding.ppl == pytest.approx(math.exp(single), rel=1e-5)
    assert overlapping.tokens == long.numel() - 1


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


# --- lm-evaluation-harness ----------------------------------------------------------------


def test_harness_refuses_local_tasks_without_their_data(capsys):
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", "checkpoints=x/y"]) == 2
    assert "tasks_dir is required for the local tasks ttl_enem, ttl_oab" in capsys.readouterr().err
    assert evaluate_main(["harness", "checkpoints=x/y", "tasks_dir=/nonexistent"]) == 2
    assert "tasks_dir=/nonexistent: no enem/train.jsonl there" in capsys.readouterr().err


@requires_tasks
def test_local_tasks_read_the_exams():
    pytest.importorskip("lm_eval")
    from ttl.evaluate.harness import task_manager

    loaded = task_manager(["ttl_pt_exams"], str(TASKS_DIR)).load(["ttl_pt_exams"])["tasks"]
    enem, oab = loaded["ttl_enem"], loaded["ttl_oab"]
    # ENEM 2022 has 3 questions whose options were lost in extraction: they are skipped.
    assert (len(enem.test_docs()), len(enem.training_docs())) == (179, 176)
    assert (len(oab.test_docs()), len(oab.training_docs())) == (558, 1572)
    doc = oab.test_docs()[0]
    assert enem.doc_to_choice(enem.test_docs()[0]) == ["A", "B", "C", "D", "E"]
    assert oab.doc_to_choice(doc) == ["A", "B", "C", "D"]
    text = oab.doc_to_text(doc)
    assert text.startswith("Pergunta:\n") and "\nA. " in text and "\nD. " in text
    assert text.endswith("\nResposta:")


@requires_tasks
@pytest.mark.slow
def test_local_lm_eval_tasks_run_on_a_tiny_checkpoint(quickstart_run, tmp_path):
    pytest.importorskip("lm_eval")
    from ttl.evaluate.harness import run_harness

    lines = []
    rows = run_harness({"checkpoints": str(quickstart_run / "step-150"), "tasks_dir": str(TASKS_DIR),
                        "limit": 20, "output_dir": str(tmp_path)}, log=lines.append)
    accuracy = {r.task: r for r in rows if r.metric == "acc"}
    assert set(accuracy) == {"ttl_enem", "ttl_oab"}
    for row in accuracy.values():
        assert row.samples == 20 and row.num_fewshot == 3 and row.step == 150
        assert 0 <= row.value <= 1 and (row.value * 20) == pytest.approx(round(row.value * 20))
        assert row.stderr is not None
    markdown = (tmp_path / "harness.md").read_text()
    assert markdown.splitlines()[0] == "| Checkpoint | Processed Tokens | ttl_enem (acc) | ttl_oab (acc) |"
    assert markdown.splitlines()[2] == (f"| step-150 | 614.4K | {100 * accuracy['ttl_enem'].value:.2f} | "
                                        f"{100 * accuracy['ttl_oab'].value:.2f} |")
    assert (tmp_path / "harness-step-150.json").is_file()
    with open(tmp_path / "harness.csv", newline="") as handle:
        assert {(r["task"], r["metric"]) for r in csv.DictReader(handle)} >= {
            ("ttl_enem", "acc"), ("ttl_oab", "acc")}


@pytest.mark.slow
def test_harness_hub_tasks_offline_fail_clearly(capsys):
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", "checkpoints=x/y", "tasks=[arc_easy]"]) == 2
    err = capsys.readouterr().err
    assert "tasks=['arc_easy']: cannot load the task data" in err
    assert "offline, use the local tasks ttl_enem, ttl_oab" in err
    assert len(err.strip().splitlines()) == 1
