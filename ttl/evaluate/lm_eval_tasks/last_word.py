"""Tucano's last-word prediction tasks, CALAME-PT and LAMBADA-PT, as ttl-owned lm-eval tasks
(ttl_calame_pt.yaml, ttl_lambada_pt.yaml), as Nkluge-correa/Tucano (commit 653e6e4e),
evaluations/lm-{calame,lambada}-pt-eval.py run them: 0-shot, the prompt is the sentence without
its last word, the first word of a greedy continuation (10 tokens at most) without `.,?!` must
equal `last_word` exactly (accuracy).
"""

from __future__ import annotations

import re
from functools import partial

from ttl.evaluate.lm_eval_tasks.loaders import load_task

# The tasks' custom_dataset (CALAME-PT: handwritten and generated sentences; LAMBADA-PT: the
# OpenAI LAMBADA test set translated to Portuguese).
load_calame = partial(load_task, "ttl_calame_pt")
load_lambada = partial(load_task, "ttl_lambada_pt")


def next_word(completion: str) -> str:
    """The first word of a continuation without `.,?!` (Tucano's clean_next_word)."""
    words = completion.split()
    return re.sub(r"[.,?!]", "", words[0]).strip() if words else ""


def last_word_results(doc: dict, results: list[str]) -> dict:
    """Accuracy: the predicted word equals `last_word`."""
    return {"acc": float(next_word(results[0]) == doc["last_word"])}
