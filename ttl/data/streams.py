"""Iterable datasets of whole micro-batches (one `pack_batch` tensor each) from prepared shards
(training) and a fixed list of rows (validation), sharded over DDP ranks and loader workers.

A rank's k-th micro-batch (from the stream's start) is made by loader worker k % num_workers;
the DataLoader collects from its workers round robin from worker 0, so the sequence is the same
for any number of workers. Training streams are endless (epochs follow inside them), so ranks
never run out at different times; `trainer.max_steps` ends training, `epochs` bounds tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ttl.data.batches import lossless_batch, pack_batch
from ttl.data.order import EpochOrder, StreamPosition, batch_positions, batches_per_rank
from ttl.data.packing import PackedRows
from ttl.data.shards import ShardReader


class ShardStream(IterableDataset):
    """Training micro-batches from prepared shards, in the seeded order of `ttl.data.order`."""

    def __init__(self, reader: ShardReader, micro_batch_size: int, seed: int, window: int,
                 shuffle: bool, document_masking: bool, packing: str, rank: int = 0,
                 world_size: int = 1, epochs: int | None = None) -> None:
        self.reader = reader
        self.micro = micro_batch_size
        self.seed, self.window, self.shuffle = seed, window, shuffle
        self.document_masking, self.packing = document_masking, packing
        self.rank, self.world_size, self.epochs = rank, world_size, epochs
        self.start = StreamPosition()
        self.on_set_epoch = None

    def set_epoch(self, epoch: int) -> None:
        """Called at each Lightning epoch start: let the DataModule move the start to where the
        stream stands (the stream's own epochs advance inside it)."""
        if self.on_set_epoch is not None:
            self.on_set_epoch()

    def __getstate__(self) -> dict:
        # The DataModule's callback stays in the main process.
        return {**self.__dict__, "on_set_epoch": None}

    def batches_per_epoch(self) -> int:
        """Micro-batches each rank takes from one full epoch."""
        return batches_per_rank(self.reader.rows, 0, self.micro, self.world_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        sizes = [c.rows for c in self.reader.chunks]
        epoch, row, first_index = self.start.epoch, self.start.row, 0
        while self.epochs is None or epoch < self.start.epoch + self.epochs:
            order = EpochOrder(sizes, self.seed, epoch, self.window, self.shuffle)
            count = batches_per_rank(order.rows, row, self.micro, self.world_size)
            cache: dict[int, PackedRows] = {}
            # This worker's batches of the epoch: global batch index k = first_index + i.
            for i in range((worker - first_index) % workers, count, workers):
                positions = batch_positions(row, i, self.micro, self.world_size, self.rank)
                rows = self._gather(order, positions, cache)
                yield pack_batch(rows.ids, rows.doc_starts, self.document_masking, self.packing)
            first_index += count
            epoch, row = epoch + 1, 0

    def _gather(self, order: EpochOrder, positions: np.ndarray, cache: dict[int, PackedRows]) -> PackedRows:
        windows = np.searchsorted(order.window_starts, positions, side="right") - 1
        parts = []
        for w in np.unique(windows):
            if w not in cache:
                # Positions only grow, so windows before this one are never needed again.
                for old in [k for k in cache if k < w]:
                    del cache[old]
                cache[w] = self._load_window(order, int(w))
            offsets = positions[windows == w] - order.window_starts[w]
            parts.append(cache[w][offsets])
        return parts[0] if len(parts) == 1 else PackedRows.concat(parts)

    def _load_window(self, order: EpochOrder, window: int) -> PackedRows:
        rows = PackedRows.concat([self.reader.read(self.reader.chunks[c]) for c in order.windows[window]])
        return rows[order.row_permutation(window)]


class ValidationBatches(IterableDataset):
    """A fixed set of validation rows, in order, as micro-batches; rank r takes batches r, r+world, ...

    Iterable, so Lightning puts no DistributedSampler on it (that pads ranks with repeated rows,
    counted twice): a rank left one batch short gets one without labels, so every rank runs the
    same number of forward passes (FSDP's are collective) and each validation token counts once.
    """

    def __init__(self, rows: PackedRows, micro_batch_size: int, document_masking: bool,
                 packing: str, rank: int = 0, world_size: int = 1) -> None:
        self.rows = rows
        self.micro = micro_batch_size
        self.document_masking, self.packing = document_masking, packing
        self.rank, self.world_size = rank, world_size

    @property
    def blocks(self) -> torch.Tensor:
        """All validation rows as one int64 tensor (n, seq_len)."""
        return torch.from_numpy(self.rows.ids.astype(np.int64))

    def __iter__(self) -> Iterator[torch.Tensor]:
        total = -(-len(self.rows) // self.micro)
        mine = range(self.rank, total, self.world_size)
        for index in mine:
            part = self.rows[index * self.micro:(index + 1) * self.micro]
            yield pack_batch(part.ids, part.doc_starts, self.document_masking, self.packing)
        for _ in range(len(mine), -(-total // self.world_size)):
            yield lossless_batch(self.rows.ids[: self.micro])
