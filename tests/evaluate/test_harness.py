"""python -m ttl.evaluate harness (ttl.evaluate.harness): lm-evaluation-harness on ttl checkpoints."""

import csv
import json
from pathlib import Path

import pytest

from ttl.evaluate.__main__ import main as evaluate_main
from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES

from ..conftest import SHARED_DATA

TASKS_DIR = SHARED_DATA / "tasks"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tasks"
# The card's shot counts (eduagarcia/lm-evaluation-harness-pt; laiviet/lm-evaluation-harness;
# Tucano's scripts) per ttl task, as suite=card runs them on the fixtures (tasks_dir=FIXTURES).
CARD_SHOTS = {"ttl_assin2_rte": 15, "ttl_assin2_sts": 15, "ttl_bluex": 3, "ttl_enem_challenge": 3,
              "ttl_faquad_nli": 15, "ttl_hatebr_offensive": 25, "ttl_oab_exams": 3, "ttl_arc_pt": 25,
              "ttl_hellaswag_pt": 0, "ttl_mmlu_pt": 25, "ttl_truthfulqa_pt": 0, "ttl_calame_pt": 0,
              "ttl_lambada_pt": 0}
# Without a copy in tasks_dir, these run as upstream lm-eval's own tasks.
UPSTREAM = {"ttl_arc_pt": "arc_pt", "ttl_hellaswag_pt": "hellaswag_pt",
            "ttl_truthfulqa_pt": "truthfulqa_pt_mc2"}
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


@pytest.mark.parametrize("selection, expected", [
    # Hub tasks offline: the local tasks to use instead.
    pytest.param("tasks=[arc_easy]", ["tasks=['arc_easy']: cannot load the task data",
                                      "offline, use the local tasks ttl_enem, ttl_oab"],
                 marks=pytest.mark.slow),
    # The card's tasks without a local copy: the folders to give.
    ("suite=tucano", ["tasks=['ttl_calame_pt', 'ttl_lambada_pt']: cannot load the task data",
                      "offline, give tasks_dir=DIR holding copies (calame_pt/, lambada_pt/"]),
])
def test_tasks_without_their_data_offline_fail_in_one_line(capsys, selection, expected):
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", "checkpoints=x/y", selection]) == 2
    err = capsys.readouterr().err
    assert all(part in err for part in expected) and len(err.strip().splitlines()) == 1


def test_suites_and_their_errors(capsys):
    pytest.importorskip("lm_eval")
    from ttl.evaluate.harness import resolve_tasks

    # ARC, HellaSwag and TruthfulQA: upstream lm-eval's tasks by name, ttl's where tasks_dir holds a copy.
    assert resolve_tasks("card", None) == [UPSTREAM.get(t, t) for t in CARD_SHOTS]
    assert resolve_tasks("card", None, str(FIXTURES)) == list(CARD_SHOTS)
    assert resolve_tasks("card", ["ttl_bluex"]) == ["ttl_bluex"]  # tasks= wins over the suite
    assert resolve_tasks("card", ["arc_pt"], str(FIXTURES)) == ["arc_pt"]  # and runs as named
    assert resolve_tasks("exams", None) == ["ttl_enem", "ttl_oab"]
    assert evaluate_main(["harness", "checkpoints=x/y", "suite=nope"]) == 2
    err = capsys.readouterr().err
    assert "suite=nope: unknown; one of exams, card_pt, card_translated, tucano, card" in err
    assert evaluate_main(["harness", "checkpoints=x/y", "suite=card", "tasks_dir=/nonexistent"]) == 2
    assert "tasks_dir=/nonexistent: no such directory" in capsys.readouterr().err


def test_offline_copies_of_upstream_s_tasks_need_tasks_dir(capsys, tmp_path):
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", "checkpoints=x/y", "tasks=[ttl_arc_pt,ttl_truthfulqa_pt]"]) == 2
    err = capsys.readouterr().err
    assert "tasks_dir is required for the local tasks ttl_arc_pt, ttl_truthfulqa_pt" in err
    (tmp_path / "truthfulqa_pt").mkdir()
    args = ["harness", "checkpoints=x/y", "tasks=[ttl_truthfulqa_pt]", f"tasks_dir={tmp_path}"]
    assert evaluate_main(args) == 2
    assert f"tasks_dir={tmp_path}: no truthfulqa_pt/val.jsonl there" in capsys.readouterr().err


def test_output_goes_to_the_run_of_a_step_dir(tmp_path):
    from ttl.evaluate.harness import default_output_dir

    (tmp_path / "config.yaml").write_text("model: {}\n")
    (tmp_path / "step-10").mkdir()
    (tmp_path / "step-10" / "config.json").write_text("{}")
    assert default_output_dir(str(tmp_path)) == tmp_path / "evaluation"
    assert default_output_dir(str(tmp_path / "step-10")) == tmp_path / "evaluation"
    assert default_output_dir("owner/model") == Path("evaluation")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_tokenizer_dir):
    """A run directory with two step exports of a tiny random Llama (no training)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    run = tmp_path_factory.mktemp("tiny-run")
    (run / "config.yaml").write_text("model: {name: tiny}\n")
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    for step in (10, 20):
        torch.manual_seed(step)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
        LlamaForCausalLM(config).save_pretrained(run / f"step-{step}")
        tokenizer.save_pretrained(run / f"step-{step}")
        state = {"step": step, "tokens": 4096 * step}
        (run / f"step-{step}" / "trainer_state.json").write_text(json.dumps(state))
    return run


@pytest.mark.slow
def test_the_card_suite_runs_offline_on_every_checkpoint_of_a_run(tiny_run):
    pytest.importorskip("lm_eval")
    from ttl.card.tables import card_tables

    assert evaluate_main(["harness", f"checkpoints={tiny_run}", "suite=card", f"tasks_dir={FIXTURES}",
                          "limit=2", "device=cpu", "batch_size=4"]) == 0
    out = tiny_run / "evaluation"
    with open(out / "harness.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for table in CARD_TABLES.values():
        for column in table:
            task, metric = column.offline or (column.task, column.metric)  # every copy is in FIXTURES
            found = [r for r in rows if r["task"] == task and r["metric"] == metric]
            assert [r["step"] for r in found] == ["10", "20"], column
            for r in found:
                assert int(r["num_fewshot"]) == CARD_SHOTS[task] and r["samples"] == "2"
                assert 0 <= float(r["value"]) <= 1
    card = (out / "card.md").read_text()
    assert ("| Checkpoint | Processed Tokens | ASSIN2 RTE | ASSIN2 STS | BLUEX | ENEM | FAQUAD NLI "
            "| HateBR ") in card
    assert "| Checkpoint | Processed Tokens | ARC | HellaSwag | MMLU | TruthfulQA | Average |" in card
    assert "| Checkpoint | Processed Tokens | CALAME-PT | LAMBADA-PT | Average |" in card
    assert "| step-20 | 81.9K |" in card
    assert "Shots: 15 / 15 / 3 / 3 / 15 / 25 / 3; questions scored: 2 / 2 / 2 / 2 / 2 / 2 / 2." in card
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == sorted(f"{t}.png" for t in CARD_SHOTS)
    saved = json.loads((out / "harness-step-10.json").read_text())
    assert saved["data"]["ttl_arc_pt"] == str(FIXTURES / "arc_pt")
    assert saved["checkpoint"]["tokens"] == 40960
    one_step = card_tables(tiny_run, 10)
    assert "| step-10 | 41.0K |" in one_step and "step-20" not in one_step


@pytest.mark.slow
def test_the_card_suite_offline_without_copies_names_upstream_s_tasks_and_their_copies(capsys):
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", "checkpoints=x/y", "suite=card_translated"]) == 2
    err = capsys.readouterr().err
    assert ("tasks=['arc_pt', 'hellaswag_pt', 'ttl_mmlu_pt', 'truthfulqa_pt_mc2']: cannot load the "
            "task data") in err
    assert ("arc_pt, hellaswag_pt, truthfulqa_pt_mc2 are lm-eval's tasks on their Hub datasets; offline, "
            "ttl's ttl_arc_pt, ttl_hellaswag_pt, ttl_truthfulqa_pt read copies in tasks_dir=DIR (arc_pt/, "
            "hellaswag_pt/, truthfulqa_pt/ with <split>.jsonl") in err
    assert "ttl_mmlu_pt read their Hub datasets; offline, give tasks_dir=DIR holding copies (mmlu_pt/" in err
    assert "Tasks from lm-eval's registry" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_card_suite_runs_upstream_s_tasks_from_the_hub(tiny_run, fixture_hub, tmp_path):
    """No tasks_dir: lm-eval's arc_pt, hellaswag_pt and truthfulqa_pt_mc2 (the Hub datasets
    answered by the fixtures) with the card's shots, and the card reads their metrics."""
    pytest.importorskip("lm_eval")
    assert evaluate_main(["harness", f"checkpoints={tiny_run}", "suite=card_translated", "limit=2",
                          "device=cpu", "batch_size=4", f"output_dir={tmp_path}"]) == 0
    with open(tmp_path / "harness.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    shots = {"arc_pt": 25, "hellaswag_pt": 0, "ttl_mmlu_pt": 25, "truthfulqa_pt_mc2": 0}
    for column in CARD_TABLES["translated"]:
        found = [r for r in rows if r["task"] == column.task and r["metric"] == column.metric]
        assert [r["step"] for r in found] == ["10", "20"], column
        assert all(int(r["num_fewshot"]) == shots[column.task] and r["samples"] == "2" for r in found)
    assert not any(r["task"].startswith("ttl_") and r["task"] != "ttl_mmlu_pt" for r in rows)
    # Upstream's MC2 score is named acc (lm-eval adds sample_len to every task); ttl's mc2 is not there.
    assert {r["metric"] for r in rows if r["task"] == "truthfulqa_pt_mc2"} - {"sample_len"} == {"acc"}
    card = (tmp_path / "card.md").read_text()
    step_10 = next(line for line in card.splitlines() if line.startswith("| step-10 |"))
    assert "-" not in step_10.split("|", 3)[3]  # every column and the average have a score
    assert "Shots: 25 / 0 / 25 / 0; questions scored: 2 / 2 / 2 / 2." in card
    saved = json.loads((tmp_path / "harness-step-10.json").read_text())
    assert saved["data"] == {"arc_pt": "hub:alexandrainst/m_arc:pt",
                             "hellaswag_pt": "hub:alexandrainst/m_hellaswag:pt",
                             "ttl_mmlu_pt": "hub:alexandrainst/m_mmlu:pt",
                             "truthfulqa_pt_mc2": "hub:alexandrainst/m_truthfulqa:pt"}
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == sorted(f"{t}.png" for t in shots)
