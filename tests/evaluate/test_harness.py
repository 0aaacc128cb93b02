"""python -m ttl.evaluate harness (ttl.evaluate.harness): lm-evaluation-harness on ttl checkpoints."""

import csv

import pytest

from ttl.evaluate.__main__ import main as evaluate_main

from ..conftest import SHARED_DATA

TASKS_DIR = SHARED_DATA / "tasks"
requires_tasks = pytest.mark.skipif(
    not (TASKS_DIR / "enem" / "test.jsonl").is_file() or not (TASKS_DIR / "oab" / "test.jsonl").is_file(),
    reason=f"{TASKS_DIR}/enem and /oab are not available on this machine",
)


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
