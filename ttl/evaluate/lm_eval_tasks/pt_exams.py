"""Data loading and prompt for the `ttl_enem` / `ttl_oab` lm-eval tasks (see the YAML files).

lm-eval calls `load_enem` / `load_oab` as the task's `custom_dataset` with the task metadata as
keyword arguments; `tasks_dir` must be among them. Each JSONL line has `question`, `options`
(a list) and `label_index` (the position of the correct option).
"""

from __future__ import annotations

import logging
from functools import partial

import datasets

from ttl.evaluate.lm_eval_tasks.catalog import TASK_DATA
from ttl.evaluate.lm_eval_tasks.loaders import load_splits, to_datasets

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJ"


def load_exam(name: str, tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """`train` and `test` of `<tasks_dir>/<name>/` (or `tasks_dir` itself when it is that folder)."""
    out = {}
    for split, records in load_splits(TASK_DATA[f"ttl_{name}"], tasks_dir, ("train", "test")).items():
        rows = []
        for number, record in enumerate(records, start=1):
            try:
                row = {"id": str(record.get("id", f"{split}-{number}")), "question": record["question"],
                       "options": [str(o) for o in record["options"]],
                       "label_index": int(record["label_index"])}
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"task ttl_{name}: {split}.jsonl row {number}: expected question, "
                                 f"options and label_index ({error})") from error
            # Some extracted questions lost their options (3 rows of ENEM 2022): they cannot be
            # asked, and as few-shot examples they would have no answer text.
            if len(row["options"]) >= 2 and 0 <= row["label_index"] < len(row["options"]):
                rows.append(row)
        if len(rows) < len(records):
            log.warning("ttl_%s: skipped %d %s question(s) without a valid option list", name,
                        len(records) - len(rows), split)
        out[split] = rows
    return to_datasets(out)


# ENEM (5 options): train = ENEM 2022, test = ENEM 2024. OAB Bar exam (4 options): train = exams
# 2010-2015, test = exams 2016-2017.
load_enem = partial(load_exam, "enem")
load_oab = partial(load_exam, "oab")


def doc_to_text(doc: dict) -> str:
    """The question, its lettered options, and the answer cue the letter follows."""
    options = "\n".join(f"{LETTERS[i]}. {option.strip()}" for i, option in enumerate(doc["options"]))
    return f"Pergunta:\n{doc['question'].strip()}\nAlternativas:\n{options}\nResposta:"


def doc_to_choice(doc: dict) -> list[str]:
    """The answer letters (A-E for ENEM, A-D for OAB)."""
    return list(LETTERS[: len(doc["options"])])


def doc_to_target(doc: dict) -> int:
    """Index of the correct option (a Python int: lm-eval's few-shot builder rejects numpy ints)."""
    return int(doc["label_index"])
