"""`TTLDataModule`: training and validation batches from prepared token shards or raw text.

`datamodule` (what `instantiate(cfg.data, ...)` calls) picks the data from the `data:` config:
`data.format=shards` (or `auto` with a manifest.json at `data.path`) streams packed shards
made by `python -m ttl.data.prepare`; `raw` tokenizes and packs text on the fly.

Batches are dicts: `input_ids`, plus `position_ids` (and `labels` with the `eos` packing)
with `data.document_masking=true`. Training streams are sharded over DDP ranks and loader
workers by `ttl.data.streams` and resume exactly: `state_dict` (which Lightning saves in
every checkpoint) records where the stream stands after the micro-batches the trainer has
processed, and a fingerprint of the data, tokenizer and order that a resume must match.
One class serves both kinds, so that Lightning files their state under one key and a resume
on the other kind is refused rather than silently started from the beginning.

Validation is a fixed list of rows (the first `max_val_blocks` of the validation split, in
order), shared between ranks without overlap, in the training batch format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from omegaconf import MISSING
from torch.utils.data import DataLoader

from ttl.data.backends import backend_for
from ttl.data.batches import unpack_batch
from ttl.data.config import DataSettings
from ttl.data.packing import PackedRows
from ttl.data.streams import RawTextStream, ShardStream, ValidationBatches
from ttl.errors import TTLError
from ttl.lightning_api import batches_processed

__all__ = ["BatchLoader", "DataSettings", "TTLDataModule", "datamodule"]

log = logging.getLogger(__name__)


def _rank_and_world(trainer) -> tuple[int, int]:
    if trainer is not None:
        return trainer.global_rank, trainer.world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BatchLoader(DataLoader):
    """A DataLoader over a dataset of packed batches that yields them as batch dicts."""

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return map(unpack_batch, super().__iter__())


class TTLDataModule(pl.LightningDataModule):
    """Packed training and validation batches from prepared shards or raw text."""

    def __init__(self, settings: DataSettings, tokenizer, micro_batch_size: int) -> None:
        super().__init__()
        self.settings = settings
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        self.backend = backend_for(settings, tokenizer, micro_batch_size)
        self.train_dataset: ShardStream | RawTextStream | None = None
        self.val_dataset: ValidationBatches | None = None
        # The trainer's processed micro-batch count when the stream (re)started, and a state
        # loaded from a checkpoint before setup() ran.
        self._start_batches = 0
        self._pending_state: dict | None = None

    @property
    def kind(self) -> str:
        """"shards" or "raw"."""
        return self.backend.kind

    def describe(self) -> dict:
        """What the run trains and validates on (source, held-out rule, counts); after setup()."""
        return self.backend.describe()

    # -- Lightning hooks -------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Open the data once (train.py calls this early, Lightning again): fail early on bad input."""
        if self.train_dataset is not None:
            return
        stream, validation, where = self.backend.open()
        self.val_dataset = self._validation(validation, where)
        stream.on_set_epoch = self._restart_here
        self.train_dataset = stream
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None

    def train_dataloader(self) -> DataLoader:
        """Micro-batches of packed training rows for this rank (the dataset batches itself)."""
        rank, world = _rank_and_world(self._trainer())
        self.backend.check_size(self.train_dataset, world)
        self.train_dataset.rank, self.train_dataset.world_size = rank, world
        return BatchLoader(self.train_dataset, batch_size=None, num_workers=self.settings.num_workers,
                           pin_memory=torch.cuda.is_available())

    def val_dataloader(self) -> DataLoader:
        """This rank's share of the fixed validation rows, in order."""
        self.val_dataset.rank, self.val_dataset.world_size = _rank_and_world(self._trainer())
        return BatchLoader(self.val_dataset, batch_size=None, pin_memory=torch.cuda.is_available())

    def state_dict(self) -> dict:
        """Where the training stream stands after the batches the trainer has processed."""
        if self.train_dataset is None:
            return {}
        processed = self._batches_processed()
        position = self.backend.position(self.train_dataset, processed - self._start_batches, self._world())
        return {"kind": self.kind, "batches": processed, "fingerprint": self.backend.fingerprint(),
                **position}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the stream from a checkpoint's state, refusing changed data or tokenizer."""
        if self.train_dataset is None:
            self._pending_state = dict(state_dict)
        else:
            self._apply_state(state_dict)

    # -- bookkeeping -----------------------------------------------------------------------

    def _trainer(self):
        return getattr(self, "trainer", None)

    def _world(self) -> int:
        return _rank_and_world(self._trainer())[1]

    def _batches_processed(self) -> int:
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end is saved
        # after the batch ran but before Lightning counts it completed. The batch Lightning
        # has already prefetched is not counted, so it is produced again after a resume.
        trainer = self._trainer()
        if trainer is None:
            return self._start_batches
        return batches_processed(trainer)

    def _apply_state(self, state: dict) -> None:
        if not state:
            return
        if state.get("kind") != self.kind:
            raise TTLError(
                f"data.path={self.settings.path}: refusing to resume, the checkpoint was trained on "
                f"{state.get('kind')} data and this is {self.kind} data (data.format); resume with "
                "the same data or start a new run"
            )
        saved, now = state.get("fingerprint", {}), self.backend.fingerprint()
        changed = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
        if changed:
            details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in changed)
            raise TTLError(
                f"data.path={self.settings.path}: refusing to resume, the training data differs from "
                f"the checkpoint's ({details}); resume with the original data, tokenizer and "
                "settings, or start a new run"
            )
        self.backend.restart(self.train_dataset, state, self._world())
        self._start_batches = int(state["batches"])

    def _restart_here(self) -> None:
        """At a Lightning epoch start, the new iterator continues where the stream stands."""
        self._apply_state(self.state_dict())

    def _validation(self, rows: PackedRows, where: str) -> ValidationBatches:
        if not len(rows):
            raise TTLError(
                f"data.path={self.settings.path}: the validation split ({where}) holds fewer "
                f"tokens than one block of data.seq_len={self.settings.seq_len}"
            )
        log.info("validation: %d blocks of %d tokens", len(rows), self.settings.seq_len)
        return ValidationBatches(rows, self.micro_batch_size, self.settings.document_masking,
                                 self.backend.packing)


def datamodule(tokenizer, micro_batch_size: int, **settings) -> TTLDataModule:
    """The DataModule of a `data:` config (`instantiate(cfg.data, tokenizer=..., micro_batch_size=...)`):
    `settings` are `DataSettings`' fields."""
    if settings.get("path") in (MISSING, "", None):
        raise TTLError("data.path is required: a Hub dataset id, a local copy of one, or local "
                       "parquet / jsonl / txt files")
    return TTLDataModule(DataSettings(**settings), tokenizer, micro_batch_size)
