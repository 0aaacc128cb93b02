"""ttl.evaluate.lm_eval_tasks.upstream: ARC, HellaSwag and TruthfulQA run as upstream lm-eval's
okapi tasks from the Hub and as ttl's on a tasks_dir copy; upstream's tasks exist in the installed
lm-eval, ask what ttl's ask, and the card reads either one's metric."""

from pathlib import Path

import pytest

from ttl.card.results import rows_from_results
from ttl.card.tables import CARD_TABLES, card_table
from ttl.checkpoints import Checkpoint
from ttl.evaluate.harness import headline_metric
from ttl.evaluate.lm_eval_tasks import TASKS_PATH
from ttl.evaluate.lm_eval_tasks.upstream import CARD_SHOTS, OFFLINE, choose, with_card_shots

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tasks"
UPSTREAM = {"arc_pt": "ttl_arc_pt", "hellaswag_pt": "ttl_hellaswag_pt",
            "truthfulqa_pt_mc2": "ttl_truthfulqa_pt"}


@pytest.fixture(scope="module")
def manager():
    """A TaskManager over lm-eval's own task files and ttl's (it indexes YAML; no data loads)."""
    tasks = pytest.importorskip("lm_eval.tasks")
    return tasks.TaskManager(include_path=str(TASKS_PATH), metadata={"tasks_dir": str(FIXTURES)})


def test_the_card_s_upstream_tasks_and_their_offline_copies():
    assert OFFLINE == UPSTREAM
    assert set(CARD_SHOTS) == set(UPSTREAM)
    assert {c.title: c.offline for c in CARD_TABLES["translated"]} == {
        "ARC": ("ttl_arc_pt", "acc_norm"), "HellaSwag": ("ttl_hellaswag_pt", "acc_norm"), "MMLU": None,
        "TruthfulQA": ("ttl_truthfulqa_pt", "mc2")}


def test_upstream_tasks_exist_in_the_installed_lm_eval(manager):
    for column in CARD_TABLES["translated"]:
        if column.offline is None:
            continue
        assert column.task in manager.all_subtasks and column.offline[0] in manager.all_subtasks
        config = manager.task_index[column.task].cfg
        assert config["dataset_path"].startswith("alexandrainst/m_") and config["dataset_name"] == "pt"
        # The column's metric is one upstream's task reports (TruthfulQA's MC2 is named acc).
        assert column.metric in [m["metric"] for m in config["metric_list"]]
        # No shot count of its own: lm-eval would run it 0-shot, hence the card's CARD_SHOTS.
        assert config.get("num_fewshot") is None


def test_suites_run_upstream_s_tasks_unless_tasks_dir_holds_a_copy(tmp_path):
    names = ["arc_pt", "hellaswag_pt", "ttl_mmlu_pt", "truthfulqa_pt_mc2"]
    assert choose(names, None) == names
    assert choose(names, str(FIXTURES)) == ["ttl_arc_pt", "ttl_hellaswag_pt", "ttl_mmlu_pt",
                                            "ttl_truthfulqa_pt"]
    (tmp_path / "arc_pt").mkdir()
    assert choose(names, str(tmp_path)) == names  # a folder without JSONL is no copy
    (tmp_path / "arc_pt" / "test.jsonl").write_text("{}\n")
    (tmp_path / "truthfulqa_pt").mkdir()
    assert choose(names, str(tmp_path)) == ["ttl_arc_pt", *names[1:]]


def results(task: str, scores: dict[str, float], shots: int) -> dict:
    """lm-eval's results dict for one task."""
    metrics = {"alias": task, **{f"{m},none": v for m, v in scores.items()},
               **{f"{m}_stderr,none": 0.01 for m in scores}}
    return {"results": {task: metrics}, "n-shot": {task: shots},
            "n-samples": {task: {"original": 100, "effective": 100}}}


def test_the_card_reads_upstream_s_metric_names_and_ttl_s():
    checkpoint = Checkpoint(source="runs/x/step-100", step=100, tokens=819_200)
    upstream = [results("arc_pt", {"acc": 0.24, "acc_norm": 0.2615}, 25),
                results("hellaswag_pt", {"acc": 0.27, "acc_norm": 0.3}, 0),
                results("truthfulqa_pt_mc2", {"acc": 0.4378}, 0)]
    rows = [r for one in upstream for r in rows_from_results(checkpoint, one)]
    lines = card_table(rows, CARD_TABLES["translated"]).splitlines()
    assert lines[2] == "| step-100 | 819.2K | 26.15 | 30.00 | - | 43.78 | - |"
    assert lines[4] == "Shots: 25 / 0 / - / 0; questions scored: 100 / 100 / - / 100."
    assert headline_metric("truthfulqa_pt_mc2", {"acc"}) == "acc"
    # ttl's offline task names the same score mc2; its acc would be no TruthfulQA score.
    offline = rows_from_results(checkpoint, results("ttl_truthfulqa_pt", {"mc2": 0.4378}, 0))
    assert card_table(offline, CARD_TABLES["translated"]).splitlines()[2] == (
        "| step-100 | 819.2K | - | - | - | 43.78 | - |")
    stray = rows_from_results(checkpoint, results("ttl_truthfulqa_pt", {"acc": 0.5}, 0))
    assert card_table(stray, CARD_TABLES["translated"]) is None
    assert headline_metric("ttl_truthfulqa_pt", {"mc2"}) == "mc2"


def test_upstream_tasks_ask_what_ttl_s_ask_with_the_card_s_shots(manager, fixture_hub):
    specs = with_card_shots(manager, ["arc_pt", "ttl_mmlu_pt", "hellaswag_pt", "truthfulqa_pt_mc2"])
    assert specs[1] == "ttl_mmlu_pt"  # not one of upstream's: left to simple_evaluate by name
    upstream = {s.config.task: s for s in specs if not isinstance(s, str)}
    assert {t: task.get_config("num_fewshot") for t, task in upstream.items()} == CARD_SHOTS
    ours = manager.load(list(UPSTREAM.values()))["tasks"]
    for name, task in upstream.items():
        ttl = ours[UPSTREAM[name]]
        shots = CARD_SHOTS[name]
        assert len(task.eval_docs) == len(ttl.eval_docs)
        for index in range(len(task.eval_docs)):
            task.set_fewshot_seed(1234)
            ttl.set_fewshot_seed(1234)
            doc, ttl_doc = task.eval_docs[index], ttl.eval_docs[index]
            # The fixtures hold no [title] markers nor stray spaces: the two prompts are equal.
            assert task.fewshot_context(doc, shots) == ttl.fewshot_context(ttl_doc, shots), name
            assert task.doc_to_choice(doc) == ttl.doc_to_choice(ttl_doc)
            assert task.doc_to_target(doc) == ttl.doc_to_target(ttl_doc)
    # TruthfulQA MC2: the same score, named acc upstream and mc2 by ttl.
    task, ttl = upstream["truthfulqa_pt_mc2"], ours["ttl_truthfulqa_pt"]
    doc, ttl_doc = task.eval_docs[0], ttl.eval_docs[0]
    lls = [(-1.0, False), (-2.5, False), (-0.5, False), (-30.0, False)][:len(ttl.doc_to_choice(ttl_doc))]
    assert task.process_results(doc, lls) == pytest.approx({"acc": ttl.process_results(ttl_doc, lls)["mc2"]})
