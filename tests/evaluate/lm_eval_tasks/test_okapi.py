"""ttl.evaluate.lm_eval_tasks.okapi and last_word: the card's translated tasks build Okapi's prompts and
continuations (laiviet/lm-evaluation-harness, commit 10cb5292), and Tucano's last-word tasks
score as Tucano's scripts do (Nkluge-correa/Tucano, commit 653e6e4e)."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from ttl.evaluate.lm_eval_tasks import last_word, okapi
from ttl.evaluate.lm_eval_tasks.catalog import SUITES, TTL_GROUPS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tasks"


@pytest.fixture(scope="module")
def tasks():
    pytest.importorskip("lm_eval")
    from ttl.evaluate.harness import task_manager

    names = list(TTL_GROUPS["ttl_card_translated"] + SUITES["tucano"])  # ttl's own, on the fixtures
    return task_manager(names, str(FIXTURES)).load(names)["tasks"]


def continuations(task, doc, shots):
    """(context, continuation) of each request lm-eval sends for `doc`."""
    ctx = task.fewshot_context(doc, shots)
    requests = task.construct_requests(doc, ctx, metadata=(task.config.task, 0, 1))
    return [r.arguments for r in (requests if isinstance(requests, list) else [requests])]


def test_arc_is_question_answer_with_each_option(tasks):
    task = tasks["ttl_arc_pt"]
    doc = task.eval_docs[0]
    requests = continuations(task, doc, 25)
    options = [doc[f"option_{x}"] for x in "abcde" if doc[f"option_{x}"]]
    # multilingual_arc.py: query "Question: " + question + "\nAnswer:", choices scored as " " + choice.
    assert [c for _, c in requests] == [" " + o for o in options]
    context = requests[0][0]
    assert context.endswith("\n\nQuestion: " + doc["instruction"] + "\nAnswer:")
    assert context.count("\nAnswer: ") == 25  # 25 answered shots
    assert task.doc_to_target(doc) == "ABCD".index(doc["answer"])


def test_mmlu_lists_lettered_choices_and_scores_the_choice_text(tasks):
    task = tasks["ttl_mmlu_pt"]
    doc = task.eval_docs[0]
    requests = continuations(task, doc, 25)
    choices = [doc[f"option_{x}"] for x in "abcd"]
    # multilingual_mmlu.py's format_example; MultipleChoiceTask's target " " + choice text.
    query = "Question: " + doc["instruction"] + "\nChoices:\n" + "".join(
        f"{k}. {c}\n" for k, c in zip("ABCD", choices, strict=True)) + "Answer:"
    assert requests[0][0].endswith("\n\n" + query)
    assert [c for _, c in requests] == [" " + c for c in choices]
    assert requests[0][0].count("\nAnswer: ") == 25


def test_hellaswag_zero_shot_cleans_wikihow_brackets(tasks):
    task = tasks["ttl_hellaswag_pt"]
    doc = task.eval_docs[1]  # its ctx_a has a "[title]" marker
    requests = continuations(task, doc, 0)
    ctx = doc["activity_label"] + ": " + doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    expected = re.sub("\\[.*?\\]", "", ctx.strip().replace(" [title]", ". ")).replace("  ", " ")
    assert requests[0][0] == expected
    assert "[title]" in doc["ctx_a"] and "[" not in requests[0][0]
    assert [c for _, c in requests] == [" " + e for e in doc["endings"]]


def test_truthfulqa_mc2_is_the_normalised_mass_of_the_true_answers(tasks):
    task = tasks["ttl_truthfulqa_pt"]
    doc = task.eval_docs[0]
    requests = continuations(task, doc, 0)
    assert requests[0][0] == okapi.QA_PROMPT + "\n\nQ: " + doc["question"] + "\nA:"
    assert [c for _, c in requests] == [" " + c for c in doc["mc2_targets_choices"]]
    lls = [-1.0, -2.5, -0.5, -30.0]
    # multilingual_truthfulqa.py: true answers come first; p_true / (p_true + p_false).
    split = list(doc["mc2_targets_labels"]).index(0)
    probs = np.exp(np.array(lls))
    expected = probs[:split].sum() / probs.sum()
    assert okapi.truthfulqa_results(doc, [(ll, False) for ll in lls]) == {"mc2": pytest.approx(expected)}
    assert math.isclose(okapi.truthfulqa_results(doc, [(-900.0, False)] * 4)["mc2"], 0.5)  # no underflow


def clean_next_word(next_word):
    """Tucano's evaluations/lm-calame-pt-eval.py, verbatim."""
    return re.sub(r'[.,?!]', '', next_word).strip()


@pytest.mark.parametrize("completion", [" mar.", " mar e o sol", "\nmar!", "", "   ", " Mar"])
def test_last_word_is_tucano_s_first_cleaned_word(completion):
    words = completion.split()
    expected = clean_next_word(words[0]) if words else ""
    assert last_word.next_word(completion) == expected
    scored = last_word.last_word_results({"last_word": "mar"}, [completion])
    assert scored == {"acc": float(expected == "mar")}


def test_last_word_tasks_prompt_with_the_bare_sentence(tasks):
    for name in SUITES["tucano"]:
        task = tasks[name]
        doc = task.eval_docs[0]
        (context, gen), = continuations(task, doc, 0)
        assert context == doc["sentence"]
        assert gen["max_gen_toks"] == 10 and gen["do_sample"] is False
