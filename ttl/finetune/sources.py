"""Rows of a fine-tuning split from local JSONL files or a Hub dataset.

A local `data.path` is a directory of `train.jsonl`, `validation.jsonl` and `test.jsonl` (the
layout of `../shared/data/tasks/*`) or a single `.jsonl` file (training rows only); a Hub
dataset's split names come from `data.hub_splits`. When no validation
split exists, every k-th training row (k = round(1 / data.val_fraction)) is held out for it, so
model selection never has to look at the test split. `data.limit_train` / `data.limit_eval`
take a seeded random subset (the task files are sorted by label, so a head slice would not do).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ttl.errors import TTLError

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
    if not 0 < val_fraction < 1:
        raise TTLError(f"data.val_fraction={val_fraction}: must be between 0 and 1")
    k = max(2, round(1 / val_fraction))
    kept = [i for i in range(len(train)) if i % k]
    held = [i for i in range(len(train)) if i % k == 0]
    return train.take(kept), train.take(held)


def subset(split: Split, limit: int | None, seed: int) -> Split:
    """A seeded random sample of `limit` rows, kept in file order; all rows when limit is None."""
    if limit is None or limit >= len(split):
        return split
    chosen = sorted(random.Random(seed).sample(range(len(split)), limit))
    return split.take(chosen)


def _local_split(root: Path, role: str) -> Split | None:
    path = root / f"{role}.jsonl"
    return read_jsonl(path) if path.is_file() else None


def load_splits(data_cfg: DictConfig, seed: int, need_test: bool) -> dict[str, Split | None]:
    """Train, validation and test rows per `data_cfg` (test None when the source has none)."""
    names = OmegaConf.to_container(data_cfg.hub_splits, resolve=True)
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
            splits = {role: _local_split(root, role) for role in ROLES}
            if splits["train"] is None:
                raise TTLError(f"data.path={data_cfg.path}: no train.jsonl in this directory")
    elif data_cfg.hub_id is not None:
        columns = OmegaConf.to_container(data_cfg.hub_columns, resolve=True) or {}
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
    splits["train"] = subset(splits["train"], data_cfg.limit_train, seed)
    for role in ("validation", "test"):
        if splits[role] is not None:
            splits[role] = subset(splits[role], data_cfg.limit_eval, seed)
    for role, split in splits.items():
        if split is not None and len(split) == 0:
            raise TTLError(f"data: the {role} split is empty")
    return splits
