"""The data of a fine-tuning run: the rows of each split (`load_splits`, from local JSONL files
or a Hub dataset) and classification examples (`encode_split`: a row's fields rendered through
`data.template`, a Python format string whose literal special tokens are the tokenizer's).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttl.errors import TTLError

if TYPE_CHECKING:
    from ttl.finetune.config import FinetuneData

ROLES = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """The rows of one split and, for each, where it came from (file:line or hub[split]#index)."""

    rows: list[dict[str, Any]]
    locations: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, indices: list[int]) -> Split:
        """The rows at `indices`, in that order."""
        return Split([self.rows[i] for i in indices], [self.locations[i] for i in indices])


def read_jsonl(path: Path) -> Split:
    """Every non-blank line of a JSONL file as a dict; a bad line is an error naming file:line."""
    rows, locations = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise TTLError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise TTLError(f"{path}:{number}: expected a JSON object per line")
            rows.append(row)
            locations.append(f"{path}:{number}")
    return Split(rows, locations)


def read_hub(hub_id: str, config: str | None, split: str, columns: dict[str, str]) -> Split:
    """One split of a Hub dataset, with columns renamed to the template's field names."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(hub_id, config, split=split)
    except Exception as error:  # datasets raises many types (offline, missing split, no such id)
        raise TTLError(
            f"data.hub_id={hub_id}: cannot load split {split!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:160]}); use data.path=DIR for a local copy"
        ) from error
    rows = [{columns.get(k, k): v for k, v in row.items()} for row in dataset]
    return Split(rows, [f"{hub_id}[{split}]#{i}" for i in range(len(rows))])


def holdout(train: Split, val_fraction: float) -> tuple[Split, Split]:
    """Split `train` into (kept, held out): every k-th row goes to validation."""
    k = max(2, round(1 / val_fraction))
    return train.take([i for i in range(len(train)) if i % k]), train.take(list(range(0, len(train), k)))


def subset(split: Split, limit: int | None, seed: int) -> Split:
    """A seeded random sample of `limit` rows, kept in file order; all rows when limit is None."""
    if limit is None or limit >= len(split):
        return split
    chosen = sorted(random.Random(seed).sample(range(len(split)), limit))
    return split.take(chosen)


def load_splits(data_cfg: FinetuneData, seed: int, need_test: bool) -> dict[str, Split | None]:
    """Train, validation and test rows per `data_cfg` (test None when the source has none)."""
    names = dict(data_cfg.hub_splits)
    unknown = set(names) - set(ROLES)
    if unknown:
        raise TTLError(f"data.hub_splits: unknown role(s) {sorted(unknown)}; use {', '.join(ROLES)}")
    splits: dict[str, Split | None]
    if data_cfg.path is not None:
        root = Path(str(data_cfg.path)).expanduser()
        if not root.exists():
            hint = f" (or data.path=null for the Hub copy {data_cfg.hub_id})" if data_cfg.hub_id else ""
            raise TTLError(f"data.path={data_cfg.path}: no such file or directory{hint}")
        if root.is_file():
            splits = {"train": read_jsonl(root), "validation": None, "test": None}
        else:
            paths = {role: root / f"{role}.jsonl" for role in ROLES}
            splits = {role: read_jsonl(path) if path.is_file() else None for role, path in paths.items()}
            if splits["train"] is None:
                raise TTLError(f"data.path={data_cfg.path}: no train.jsonl in this directory")
    elif data_cfg.hub_id is not None:
        columns = dict(data_cfg.hub_columns)
        splits = {role: read_hub(data_cfg.hub_id, data_cfg.hub_config, names[role], columns)
                  if names.get(role) else None for role in ROLES}
    else:
        raise TTLError("data.path and data.hub_id are both null: set one of them")
    if splits["validation"] is None:
        splits["train"], splits["validation"] = holdout(splits["train"], data_cfg.val_fraction)
    if need_test and splits["test"] is None:
        where = f"data.path={data_cfg.path}" if data_cfg.path is not None \
            else f"data.hub_id={data_cfg.hub_id}"
        raise TTLError(f"{where}: no test split (test.jsonl or data.hub_splits.test); "
                       "a classification task is scored on test")
    for role, split in splits.items():
        if split is None:
            continue
        if len(split) == 0:
            raise TTLError(f"data: the {role} split is empty")
        splits[role] = subset(split, data_cfg.limit_train if role == "train" else data_cfg.limit_eval, seed)
    return splits


def template_fields(template: str) -> list[str]:
    """The field names a template formats, in order of appearance."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TTLError(f"data.template={template!r}: {error}") from error
    return [name for _, name, _, _ in parsed if name]


def label_id(value: Any, where: str, label_field: str, labels: list[str]) -> int:
    """A row's label as an id in [0, len(labels)): ints, booleans, or one of the label names."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, str) and value in labels:
        value = labels.index(value)
    if not isinstance(value, int) or not 0 <= value < len(labels):
        raise TTLError(
            f"{where}: {label_field}={value!r} is not a label of this task "
            f"(task.labels: 0..{len(labels) - 1} = {', '.join(labels)})"
        )
    return value


def _field_text(row: dict, name: str, where: str) -> str:
    value = row[name]
    if value is None:
        raise TTLError(f"{where}: field {name!r} is empty")
    return str(value)


def encode_split(split: Split, tokenizer, template: str, label_field: str, labels: list[str],
                 max_length: int) -> list[dict[str, Any]]:
    """Token ids and label id of every row: [{"input_ids": [...], "labels": int}, ...]."""
    fields = template_fields(template)
    for row, where in zip(split.rows, split.locations, strict=True):
        missing = [name for name in fields if name not in row]
        if missing:
            raise TTLError(f"{where}: no field {missing[0]!r} (data.template={template!r} needs it; the row "
                           f"has {', '.join(sorted(row))}); set data.template or data.hub_columns")
        if label_field not in row:
            raise TTLError(f"{where}: no label field data.label_field={label_field!r} (the row has "
                           f"{', '.join(sorted(row))})")
    # The template's special tokens are ids of their own; the text pieces between them are tokenized.
    special = [t for t in tokenizer.all_special_tokens if t in template]
    pattern = "(" + "|".join(re.escape(t) for t in sorted(special, key=len, reverse=True)) + ")"
    columns: list[list[list[int]]] = []
    for piece in [p for p in re.split(pattern, template) if p] if special else [template]:
        if piece in special:
            columns.append([[tokenizer.convert_tokens_to_ids(piece)]] * len(split))
            continue
        texts = [piece.format_map({name: _field_text(row, name, where) for name in fields})
                 for row, where in zip(split.rows, split.locations, strict=True)]
        columns.append(tokenizer(texts, add_special_tokens=False, split_special_tokens=True,
                                 verbose=False)["input_ids"])
    examples = []
    for i, (row, where) in enumerate(zip(split.rows, split.locations, strict=True)):
        ids = [token for column in columns for token in column[i]][:max_length]
        examples.append({"input_ids": ids, "labels": label_id(row[label_field], where, label_field, labels)})
    return examples


def majority_label(labels: list[int]) -> int:
    """The most frequent label (the smallest id among ties)."""
    counts = Counter(labels)
    return min(counts, key=lambda label: (-counts[label], label))
