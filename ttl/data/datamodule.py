"""`TTLDataModule`: training and validation batches from prepared token shards (`data.path`'s,
or with `data.format=auto` on raw text those `ttl.data.cache` prepares on first use).

`state_dict` (in every checkpoint) records the stream's global position (epoch, row) after the
micro-batches the trainer has processed, and the fingerprint a resume must match: a resume
continues with exactly the next batch on any number of ranks, workers or micro-batch size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from omegaconf import MISSING
from torch.utils.data import DataLoader

from ttl.data.batches import unpack_batch
from ttl.data.cache import prepared_shards
from ttl.data.config import DataSettings
from ttl.data.hub import resolve_shard_dir
from ttl.data.manifest import MANIFEST, check_against, read_manifest
from ttl.data.order import StreamPosition, advance
from ttl.data.packing import PackedRows
from ttl.data.shards import ShardReader
from ttl.data.streams import ShardStream, ValidationBatches
from ttl.errors import TTLError
from ttl.lightning_api import batches_processed

log = logging.getLogger(__name__)


class BatchLoader(DataLoader):
    """A DataLoader over a dataset of packed batches that yields them as batch dicts."""

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return map(unpack_batch, super().__iter__())


class TTLDataModule(pl.LightningDataModule):
    """Packed training and validation batches from a prepared shard set."""

    def __init__(self, settings: DataSettings, tokenizer, micro_batch_size: int) -> None:
        super().__init__()
        self.settings = settings
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        # format=auto on raw text (no manifest.json at data.path): prepared into the cache first.
        self.prepare_first = settings.format == "auto" and not (
            Path(settings.path).expanduser() / MANIFEST).is_file()
        self.train_dataset: ShardStream | None = None
        self.val_dataset: ValidationBatches | None = None
        self.root: Path | None = None
        self.manifest = None
        # The trainer's processed micro-batch count when the stream (re)started, and a state
        # loaded from a checkpoint before setup() ran.
        self._start_batches = 0
        self._pending_state: dict | None = None

    def setup(self, stage: str | None = None) -> None:
        """Open the data once (train.py calls this early, Lightning again), checking the manifest
        against the run and every shard's footer."""
        if self.train_dataset is not None:
            return
        s = self.settings
        root = prepared_shards(s, self.tokenizer) if self.prepare_first else resolve_shard_dir(s.path)
        manifest = read_manifest(root)
        check_against(manifest, root, self.tokenizer, s.seq_len, s.packing)
        readers = []
        for split in ("train", "validation"):
            if split not in manifest.splits:
                raise TTLError(f"{root / MANIFEST}: no {split!r} split")
            readers.append(ShardReader(root, manifest.splits[split].shards, s.seq_len))
            readers[-1].verify()
        train, val = readers
        self.root, self.manifest = root, manifest
        log.info("shards: %s, %d training rows of %d tokens", root, train.rows, s.seq_len)
        self.val_dataset = self._validation(val)
        stream = ShardStream(train, self.micro_batch_size, s.seed, s.shuffle_window, s.shuffle,
                             s.document_masking, manifest.packing)
        # At a Lightning epoch start, the new iterator continues where the stream stands.
        stream.on_set_epoch = lambda: self._apply_state(self.state_dict())
        self.train_dataset = stream
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    def train_dataloader(self) -> DataLoader:
        """Micro-batches of packed training rows for this rank (the dataset batches itself)."""
        rank, world = self._rank_and_world()
        rows = self.train_dataset.reader.rows
        if rows < self.micro_batch_size * world:
            raise TTLError(
                f"data.path={self.settings.path}: the training split holds {rows} rows, fewer than "
                f"one micro-batch ({self.micro_batch_size}) on each of {world} device(s)"
            )
        self.train_dataset.rank, self.train_dataset.world_size = rank, world
        return BatchLoader(self.train_dataset, batch_size=None, num_workers=self.settings.num_workers,
                           pin_memory=torch.cuda.is_available())

    def val_dataloader(self) -> DataLoader:
        """This rank's share of the fixed validation rows, in order."""
        self.val_dataset.rank, self.val_dataset.world_size = self._rank_and_world()
        return BatchLoader(self.val_dataset, batch_size=None, pin_memory=torch.cuda.is_available())

    def state_dict(self) -> dict:
        """Where the training stream stands after the batches the trainer has processed."""
        if self.train_dataset is None:
            return {}
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end is saved
        # after the batch ran but before Lightning counts it completed. The batch Lightning
        # has already prefetched is not counted, so it is produced again after a resume.
        processed = self._start_batches if self.trainer is None else batches_processed(self.trainer)
        return self.state_at(processed, self._rank_and_world()[1])

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the stream from a checkpoint's state, refusing changed data or tokenizer."""
        if self.train_dataset is None:
            self._pending_state = dict(state_dict)
        else:
            self._apply_state(state_dict)

    def describe(self) -> dict:
        """What the run trains and validates on (source, held-out rule, counts), for the run
        directory's data.json; after setup()."""
        m = self.manifest
        return {"format": "shards", "shards": str(self.root), "source": m.source,
                "source_splits": m.source_splits, "holdout": m.holdout,
                "train": {"rows": m.splits["train"].rows, "tokens": m.splits["train"].tokens,
                          "documents": m.splits["train"].documents},
                "validation": {"rows": m.splits["validation"].rows,
                               "documents": m.splits["validation"].documents,
                               "rows_used": len(self.val_dataset.rows)}}

    def fingerprint(self) -> dict:
        """What a resume must find unchanged: the manifest's identity (tokenizer, seq_len,
        source, shards) and the order's settings."""
        m, s = self.manifest, self.settings
        return {"manifest": m.fingerprint, "tokenizer": m.tokenizer_fingerprint, "seq_len": m.seq_len,
                "source": m.source_fingerprint, "rows": m.splits["train"].rows,
                "order": [s.seed, s.shuffle, s.shuffle_window if s.shuffle else None]}

    def state_at(self, processed: int, world: int) -> dict:
        """The checkpoint state once the trainer has processed `processed` micro-batches per rank
        on `world` ranks: the global position (epoch, row) of the stream, any layout resumes it."""
        stream = self.train_dataset
        at = advance(stream.start, processed - self._start_batches, stream.reader.rows,
                     self.micro_batch_size, world)
        return {"kind": "shards", "batches": processed, "fingerprint": self.fingerprint(),
                "epoch": at.epoch, "row": at.row}

    def _rank_and_world(self) -> tuple[int, int]:
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _apply_state(self, state: dict) -> None:
        if not state:
            return
        kind = state.get("kind")
        if kind == "raw":
            raise TTLError(
                f"data.path={self.settings.path}: refusing to resume, the checkpoint was trained with "
                "data.format=raw (raw text tokenized on the fly), which was removed; start a new run "
                "(data.format=auto prepares the same text into shards), or resume with the ttl "
                "version that wrote the checkpoint"
            )
        if kind != "shards":
            raise TTLError(
                f"data.path={self.settings.path}: refusing to resume, the checkpoint's data state is "
                f"of kind {kind!r}, not 'shards'; resume with the ttl version that wrote it or start "
                "a new run"
            )
        saved, now = state.get("fingerprint", {}), self.fingerprint()
        changed = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
        if changed:
            details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in changed)
            raise TTLError(
                f"data.path={self.settings.path}: refusing to resume, the training data differs from "
                f"the checkpoint's ({details}); resume with the original data, tokenizer and "
                "settings, or start a new run"
            )
        # A global position: the stream continues there on any number of ranks and workers.
        self.train_dataset.start = StreamPosition(int(state["epoch"]), int(state["row"]))
        self._start_batches = int(state["batches"])

    def _validation(self, reader: ShardReader) -> ValidationBatches:
        """All validation rows, or `max_val_blocks` of them evenly spaced over the split (its
        files are in source order, so the first rows would come from the first files only)."""
        s = self.settings
        limit, total = s.max_val_blocks, reader.rows
        wanted = np.arange(total) if limit is None or limit >= total else \
            np.linspace(0, total - 1, limit).round().astype(np.int64)
        parts, first = [], 0
        for chunk in reader.chunks:
            inside = wanted[(wanted >= first) & (wanted < first + chunk.rows)] - first
            if len(inside):
                parts.append(reader.read(chunk)[inside])
            first += chunk.rows
        if not parts:
            raise TTLError(
                f"data.path={s.path}: the validation split ({self.root / 'validation'}) holds fewer "
                f"tokens than one block of data.seq_len={s.seq_len}"
            )
        rows = PackedRows.concat(parts)
        log.info("validation: %d blocks of %d tokens", len(rows), s.seq_len)
        return ValidationBatches(rows, self.micro_batch_size, s.document_masking, self.manifest.packing)


def datamodule(tokenizer, micro_batch_size: int, **settings) -> TTLDataModule:
    """The DataModule of a `data:` config (`instantiate(cfg.data, tokenizer=..., micro_batch_size=...)`):
    `settings` are `DataSettings`' fields."""
    if settings.get("path") in (MISSING, "", None):
        raise TTLError("data.path is required: a Hub dataset id, a local copy of one, or local "
                       "parquet / jsonl / txt files")
    data = DataSettings(**settings)
    data.validate()
    return TTLDataModule(data, tokenizer, micro_batch_size)
