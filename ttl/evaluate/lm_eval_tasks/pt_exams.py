"""Data loading and prompt for the `ttl_enem` / `ttl_oab` lm-eval tasks (see the YAML files).

lm-eval calls `load_enem` / `load_oab` as the task's `custom_dataset` with the task metadata as
keyword arguments; `tasks_dir` must be among them. Each JSONL line has `question`, `options`
(a list) and `label_index` (the position of the correct option).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJ"
SPLITS = ("train", "test")


def load_exam(name: str, tasks_dir: str | None) -> datasets.DatasetDict:
    """`train` and `test` of `<tasks_dir>/<name>/` (or `tasks_dir` itself when it is that folder)."""
    if not tasks_dir:
        raise ValueError(
            f"task ttl_{name}: no data path; pass the folder holding {name}/train.jsonl and "
            f"{name}/test.jsonl as metadata, e.g. --metadata '{{\"tasks_dir\": \"../shared/data/tasks\"}}'"
        )
    root = Path(tasks_dir).expanduser()
    directory = root if (root / "test.jsonl").is_file() and root.name == name else root / name
    out = {}
    for split in SPLITS:
        path = directory / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"task ttl_{name}: {path} not found (tasks_dir={tasks_dir})")
        rows, skipped = [], 0
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                record = json.loads(line)
                try:
                    row = {
                        "id": str(record.get("id", f"{split}-{number}")),
                        "question": record["question"],
                        "options": [str(o) for o in record["options"]],
                        "label_index": int(record["label_index"]),
                    }
                except (KeyError, TypeError, ValueError) as error:
                    raise ValueError(f"{path}:{number}: expected question, options and "
                                     f"label_index ({error})") from error
                # Some extracted questions lost their options (3 rows of ENEM 2022): they
                # cannot be asked, and as few-shot examples they would have no answer text.
                if len(row["options"]) >= 2 and 0 <= row["label_index"] < len(row["options"]):
                    rows.append(row)
                else:
                    skipped += 1
        if skipped:
            log.warning("ttl_%s: skipped %d %s question(s) without a valid option list", name,
                        skipped, split)
        out[split] = datasets.Dataset.from_list(rows)
    return datasets.DatasetDict(out)


def load_enem(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """ENEM (5 options): train = ENEM 2022, test = ENEM 2024."""
    return load_exam("enem", tasks_dir)


def load_oab(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """OAB Bar exam (4 options): train = exams 2010-2015, test = exams 2016-2017."""
    return load_exam("oab", tasks_dir)


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
