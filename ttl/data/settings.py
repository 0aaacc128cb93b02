"""`DataSettings`: the `data:` config group, typed and checked."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from ttl.data.holdout import check_fraction
from ttl.data.packing import check_packing
from ttl.errors import TTLError

FORMATS = ("auto", "raw", "shards")


@dataclass(frozen=True)
class DataSettings:
    """The `data:` config group, typed."""

    path: str
    seq_len: int
    # auto: data.path's prepared shards when it holds a manifest.json; for raw text, shards
    # prepared into prepared_dir on first use (ttl.data.cache). raw: tokenize on the fly.
    # shards: data.path must be a prepared set (or a Hub id of one).
    format: str = "auto"
    text_column: str = "text"
    train_split: str = "train"
    val_split: str = "validation"
    # Without a validation split: documents held out by content hash (ttl.data.holdout), as
    # a share, or as a count (val_documents, which then sets the share).
    val_fraction: float = 0.01
    val_documents: int | None = None
    max_val_blocks: int | None = None
    # ttl | eos; null with shards = the manifest's convention.
    packing: str | None = "ttl"
    document_masking: bool = False
    seed: int = 42
    shuffle: bool = True
    # Shards: row groups whose rows are shuffled together (memory: this many row groups).
    shuffle_window: int = 8
    # Raw text: rows held in each worker's shuffle buffer.
    shuffle_buffer: int = 1024
    tokenize_batch_size: int = 256
    num_workers: int = 0
    # format=auto on raw text: where prepared sets are cached, and the processes preparing
    # them (null = every core).
    prepared_dir: str = "~/.cache/ttl/shards"
    prepare_num_proc: int | None = None
    # The Hub dataset this data is (a copy of): how model cards name it. Null: data.path when
    # it is a Hub id, else the directory's name.
    dataset_id: str | None = None

    def __post_init__(self) -> None:
        check_fraction(self.val_fraction)
        if self.prepare_num_proc is None:
            object.__setattr__(self, "prepare_num_proc", os.cpu_count() or 1)
        if self.packing is not None:
            check_packing(self.packing)
        if self.format not in FORMATS:
            raise TTLError(f"data.format={self.format!r}: choose one of {', '.join(FORMATS)}")
        for key in ("shuffle_window", "shuffle_buffer", "tokenize_batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < (key != "shuffle_buffer"):
                raise TTLError(f"data.{key}={value!r}: expected a positive integer")

    @classmethod
    def from_mapping(cls, values: dict) -> DataSettings:
        """Settings from a plain dict, naming an unknown key instead of a TypeError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TTLError(f"data.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        return cls(**values)
