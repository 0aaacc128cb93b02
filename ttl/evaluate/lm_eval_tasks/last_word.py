"""Tucano's last-word prediction tasks, CALAME-PT and LAMBADA-PT, as ttl-owned lm-eval tasks
(ttl_calame_pt.yaml, ttl_lambada_pt.yaml).

They reproduce Nkluge-correa/Tucano (commit 653e6e4e), evaluations/lm-calame-pt-eval.py and
lm-lambada-pt-eval.py with their defaults: 0-shot, the prompt is the sentence without its last
word, greedy generation of up to 10 tokens, the first whitespace-separated word of the
continuation with `.,?!` removed must equal `last_word` exactly (accuracy).
Data: NOVA-vision-language/calame-pt (config `all`) and TucanoBR/lambada-pt, one `train` split
each with `sentence` and `last_word`.
"""

from __future__ import annotations

import re

import datasets

from ttl.evaluate.lm_eval_tasks.catalog import TASK_DATA
from ttl.evaluate.lm_eval_tasks.loaders import load_splits


def _load(task: str, tasks_dir: str | None) -> datasets.DatasetDict:
    rows = load_splits(TASK_DATA[task], tasks_dir, ("train",))["train"]
    return datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)})


def load_calame(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """CALAME-PT (handwritten and generated sentences: config `all`)."""
    return _load("ttl_calame_pt", tasks_dir)


def load_lambada(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """LAMBADA-PT (the OpenAI LAMBADA test set translated to Portuguese)."""
    return _load("ttl_lambada_pt", tasks_dir)


def next_word(completion: str) -> str:
    """The first word of a continuation without `.,?!` (Tucano's clean_next_word)."""
    words = completion.split()
    return re.sub(r"[.,?!]", "", words[0]).strip() if words else ""


def last_word_results(doc: dict, results: list[str]) -> dict:
    """Accuracy: the predicted word equals `last_word`."""
    return {"acc": float(next_word(results[0]) == doc["last_word"])}
