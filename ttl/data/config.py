"""The settings of ttl's data, each declared once: `DataSettings` (the `data:` group of
`python -m ttl.train`; conf/data/*.yaml hold only what differs from it) and `PrepareConfig`
(`python -m ttl.data.prepare`). `validate()` checks what Hydra's type checks cannot say.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from ttl.data.holdout import check_fraction
from ttl.data.packing import check_packing
from ttl.errors import TTLError, check_positive

FORMATS = ("auto", "shards")


@dataclass
class SplitSettings:
    """What raw text shares between training on it and preparing it: its column, its splits and
    the held-out rule, and the block length it is packed into."""

    seq_len: int = 2048
    text_column: str = "text"
    train_split: str = "train"
    val_split: str = "validation"
    # Used only when the source has no validation split: the share of documents held out by
    # content hash (ttl.data.holdout), or a count of documents (val_documents, which then sets
    # the share). Never trained on.
    val_fraction: float = 0.01
    val_documents: int | None = None


@dataclass
class DataSettings(SplitSettings):
    """The training data: where it is, how it is split, packed and ordered."""

    _target_: str = "ttl.data.datamodule.datamodule"
    # A Hub dataset id, a local copy of a Hub repository, a directory or a file (parquet,
    # jsonl, txt), or a prepared shard set (a directory holding manifest.json, or its Hub id).
    path: str = MISSING
    # auto: data.path's prepared shards when it holds a manifest.json; for raw text, shards
    # prepared into prepared_dir on first use (ttl.data.cache), then reused. shards: data.path
    # must be a prepared set (or a Hub id of one).
    format: str = "auto"
    # Cap on validation rows, taken evenly over the held-out split (a full pass over them is one
    # validation); null = all.
    max_val_blocks: int | None = 1000
    # ttl: each document prefixed with <s>, no </s> (TeenyTinyLlama); eos: documents end with
    # </s>; null with shards: the manifest's convention.
    packing: str | None = "ttl"
    # true: position ids restart at each document and attention stops at document boundaries.
    document_masking: bool = False
    # Order of the training stream, seeded per epoch: 128-row groups in a random order, rows
    # shuffled within windows of shuffle_window groups (32 MB per loader worker at 2,048 tokens).
    seed: int = 42
    shuffle: bool = True
    shuffle_window: int = 64
    # Dataloader workers per device.
    num_workers: int = 0
    # format=auto on raw text: where prepared sets are kept (null: ~/.cache/ttl/shards) and the
    # processes preparing them (null: every core).
    prepared_dir: str | None = None
    prepare_num_proc: int | None = None
    # How model cards name this data (a Hub dataset id); null: data.path when it is a Hub id,
    # else the directory's name.
    dataset_id: str | None = None

    def validate(self) -> None:
        """The held-out share, the packing, the format and the positive counts."""
        check_fraction(self.val_fraction)
        if self.packing is not None:
            check_packing(self.packing)
        if self.format == "raw":
            raise TTLError(
                "data.format=raw: raw streaming (tokenizing on the fly) was removed; data.format=auto "
                "(the default) prepares the same text into shards on first use and reuses them"
            )
        if self.format not in FORMATS:
            raise TTLError(f"data.format={self.format!r}: choose one of {', '.join(FORMATS)}")
        check_positive("data.", seq_len=self.seq_len, shuffle_window=self.shuffle_window,
                       val_documents=self.val_documents, max_val_blocks=self.max_val_blocks,
                       prepare_num_proc=self.prepare_num_proc)
        if self.num_workers < 0:
            raise TTLError(f"data.num_workers={self.num_workers}: must be at least 0")


@dataclass
class PrepareConfig(SplitSettings):
    """`python -m ttl.data.prepare data_path=... tokenizer=... output_dir=...`: raw text -> packed
    token shards for data.format=shards (data.format=auto prepares them the same way)."""

    # A Hub dataset id, a local copy of one, or local parquet / jsonl / txt files.
    data_path: str = MISSING
    # A tokenizer directory or Hub id.
    tokenizer: str = MISSING
    output_dir: str = MISSING
    # ttl: <s> before each document, no </s> (TeenyTinyLlama); eos: </s> after each document.
    packing: str = "ttl"
    # Tokenizing processes; null = every core of this machine.
    num_proc: int | None = None
    # Documents per tokenization task.
    batch_size: int = 512
    # Rows per parquet row group (the unit of reading and of the training shuffle) and row
    # groups per file.
    rows_per_group: int = 128
    groups_per_shard: int = 512
    # Stop after reading this many source documents (null = all): quick trials.
    max_documents: int | None = None
    overwrite: bool = False
    # Upload the finished set to this Hub dataset repository (owner/name).
    push_to_hub: str | None = None
    private: bool = True

    def validate(self) -> None:
        """Mandatory paths given, positive counts, a fraction in (0, 1), a known packing."""
        for key in ("data_path", "tokenizer", "output_dir"):
            if getattr(self, key) in (MISSING, None, ""):
                raise TTLError(f"{key} is required: python -m ttl.data.prepare data_path=... "
                               "tokenizer=DIR output_dir=DIR")
        check_positive("", seq_len=self.seq_len, batch_size=self.batch_size,
                       rows_per_group=self.rows_per_group, groups_per_shard=self.groups_per_shard,
                       val_documents=self.val_documents,
                       max_documents=self.max_documents, num_proc=self.num_proc)
        check_fraction(self.val_fraction, "val_fraction")
        check_packing(self.packing)
        if self.seq_len < 2:
            raise TTLError(f"seq_len={self.seq_len}: must be at least 2")
