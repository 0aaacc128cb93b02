"""TeenyTinyLlama's translated-benchmark table (ARC, HellaSwag, MMLU, TruthfulQA in Portuguese)
as ttl-owned lm-eval tasks (ttl_{arc,hellaswag,mmlu,truthfulqa}_pt.yaml).

The card ran laiviet/lm-evaluation-harness (Okapi; commit 10cb5292, `main.py --tasks
arc_pt,hellaswag_pt,mmlu_pt,truthfulqa_pt --task_alias open_llm`, see TeenyTinyLlama's
Evaluation/lm-evaluation-harness-pt.ipynb). Prompts, shot counts and metrics follow its
lm_eval/tasks/multilingual_{arc,hellaswag,mmlu,truthfulqa}.py, on Okapi's translation as
re-published on the Hub by alexandrainst (`instruction`, `option_a`..`option_e`, `answer`, ...).
MMLU also reads the Hub: upstream's m_mmlu_pt asks it another way (letters as choices) than the card.
"""

from __future__ import annotations

import math
import re
from functools import partial

from ttl.evaluate.lm_eval_tasks.loaders import load_task

LETTERS = "ABCDE"
# multilingual_truthfulqa.py's QA_PROMPT (English, as Okapi uses it for every language).
QA_PROMPT = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)
# The tasks' custom_dataset: their TaskData.splits (HellaSwag, TruthfulQA: val, which Okapi scores).
load_arc = partial(load_task, "ttl_arc_pt")
load_hellaswag = partial(load_task, "ttl_hellaswag_pt")
load_mmlu = partial(load_task, "ttl_mmlu_pt")
load_truthfulqa = partial(load_task, "ttl_truthfulqa_pt")


def _options(doc: dict, letters: str) -> list[str]:
    return [str(doc[f"option_{x.lower()}"]) for x in letters if doc.get(f"option_{x.lower()}")]


# ARC: the YAML's "Question: ...\nAnswer:" (multilingual_arc.py's query), each option as the
# continuation.
def arc_choices(doc: dict) -> list[str]:
    """The non-empty options A-E."""
    return _options(doc, LETTERS)


def letter_target(doc: dict) -> int:
    """Index of the answer letter."""
    return LETTERS.index(str(doc["answer"]).strip())


def _clean(text: str) -> str:
    # multilingual_hellaswag.py's preprocess: WikiHow's [title]/[step] artefacts.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag_text(doc: dict) -> str:
    """Activity label, then the two halves of the context."""
    return _clean(doc["activity_label"] + ": " + doc["ctx_a"] + " " + doc["ctx_b"].capitalize())


def hellaswag_choices(doc: dict) -> list[str]:
    """The four endings, cleaned."""
    return [_clean(ending) for ending in doc["endings"]]


def hellaswag_target(doc: dict) -> int:
    """Index of the true ending."""
    return int(doc["label"])


# MMLU: the question with lettered choices; the continuation is the choice's text.
def mmlu_text(doc: dict) -> str:
    """multilingual_mmlu.py's format_example."""
    choices = "".join(f"{x}. {c}\n" for x, c in zip(LETTERS, _options(doc, LETTERS[:4]), strict=False))
    return "Question: " + doc["instruction"] + "\nChoices:\n" + choices + "Answer:"


def mmlu_choices(doc: dict) -> list[str]:
    """Options A-D."""
    return _options(doc, LETTERS[:4])


# TruthfulQA MC2: the six-question primer, the question, each of mc2_targets_choices (true ones first).
def truthfulqa_text(doc: dict) -> str:
    """multilingual_truthfulqa.py's doc_to_text."""
    return QA_PROMPT + "\n\nQ: " + doc["question"] + "\nA:"


def truthfulqa_results(doc: dict, results: list[tuple[float, bool]]) -> dict:
    """MC2: the probability mass of the true answers, normalised over all choices."""
    lls = [ll for ll, _ in results]
    top = max(lls)
    probs = [math.exp(ll - top) for ll in lls]
    true_mass = sum(p for p, label in zip(probs, doc["mc2_targets_labels"], strict=True) if int(label) == 1)
    return {"mc2": true_mass / sum(probs)}
