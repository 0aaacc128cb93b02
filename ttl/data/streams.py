"""Iterable datasets that yield whole micro-batches, sharded over DDP ranks and loader workers.

Each dataset yields ready batches, packed as one tensor each (`ttl.data.batches.pack_batch`;
`BatchLoader` unpacks them into dicts), so which worker makes which micro-batch is decided
here: a rank's k-th micro-batch (counted from the stream's start position) is made by loader
worker k % num_workers. The DataLoader collects
batches from its workers round robin, starting with worker 0, so a rank's batch sequence is
the same for any number of workers, and a stream restarted at batch k continues exactly.

Training streams are endless: epochs follow each other inside the stream (each with its
own seeded order), so DDP ranks never run out at different times; `trainer.max_steps` ends
training. `epochs`/`passes` bound them for tests and benchmarks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ttl.data.batches import lossless_batch, pack_batch
from ttl.data.order import (
    EpochOrder,
    StreamPosition,
    batch_positions,
    batches_per_rank,
    permutation,
    random_keys,
)
from ttl.data.packing import PackedRows, RowPacker, encode_documents, is_empty
from ttl.data.shards import ShardReader
from ttl.data.sources import TextSource
from ttl.errors import TTLError

log = logging.getLogger(__name__)


def _worker() -> tuple[int, int]:
    info = get_worker_info()
    return (info.id, info.num_workers) if info else (0, 1)


def _take(rows: PackedRows, index: np.ndarray) -> PackedRows:
    return PackedRows(rows.ids[index], [rows.doc_starts[i] for i in index])


class ShardStream(IterableDataset):
    """Training micro-batches from prepared shards, in the seeded order of `ttl.data.order`."""

    def __init__(self, reader: ShardReader, micro_batch_size: int, seed: int, window: int,
                 shuffle: bool, document_masking: bool, packing: str, rank: int = 0,
                 world_size: int = 1, epochs: int | None = None) -> None:
        self.reader = reader
        self.micro = micro_batch_size
        self.seed, self.window, self.shuffle = seed, window, shuffle
        self.document_masking, self.packing = document_masking, packing
        self.rank, self.world_size = rank, world_size
        self.epochs = epochs
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
        worker, workers = _worker()
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

    def _gather(self, order: EpochOrder, positions: np.ndarray,
                cache: dict[int, PackedRows]) -> PackedRows:
        windows = order.window_of(positions)
        parts = []
        for w in np.unique(windows):
            if w not in cache:
                # Positions only grow, so windows before this one are never needed again.
                for old in [k for k in cache if k < w]:
                    del cache[old]
                cache[w] = self._load_window(order, int(w))
            offsets = positions[windows == w] - order.window_starts[w]
            parts.append(_take(cache[w], offsets))
        if len(parts) == 1:
            return parts[0]
        return PackedRows(np.concatenate([p.ids for p in parts]),
                          [s for p in parts for s in p.doc_starts])

    def _load_window(self, order: EpochOrder, window: int) -> PackedRows:
        parts = [self.reader.read(self.reader.chunks[c]) for c in order.windows[window]]
        rows = PackedRows(np.concatenate([p.ids for p in parts]), [s for p in parts for s in p.doc_starts])
        return _take(rows, order.row_permutation(window))


class RawTextStream(IterableDataset):
    """Training micro-batches tokenized and packed on the fly from raw documents.

    Files (or, with fewer files than slots, documents) are dealt to (rank, worker) slots;
    each slot reads its own share, packs it, shuffles its rows in a bounded buffer and cuts
    micro-batches. The stream is a deterministic function of the seed, the number of ranks
    and workers and the micro-batch size; a resume replays (re-tokenizes) the batches before
    the resume point.
    """

    def __init__(self, source: TextSource, tokenizer, seq_len: int, packing: str,
                 micro_batch_size: int, seed: int, shuffle: bool, shuffle_buffer: int,
                 tokenize_batch_size: int, document_masking: bool, rank: int = 0,
                 world_size: int = 1, passes: int | None = None) -> None:
        self.source, self.tokenizer = source, tokenizer
        self.seq_len, self.packing, self.micro = seq_len, packing, micro_batch_size
        self.seed, self.shuffle, self.shuffle_buffer = seed, shuffle, shuffle_buffer
        self.tokenize_batch_size = tokenize_batch_size
        self.document_masking = document_masking
        self.rank, self.world_size, self.passes = rank, world_size, passes
        # Rank-local micro-batches to skip (a resume): they are produced and dropped.
        self.skip = 0
        self.on_set_epoch = None

    def set_epoch(self, epoch: int) -> None:
        """Called at each Lightning epoch start: let the DataModule set how many batches to skip
        (passes over the documents advance inside the stream)."""
        if self.on_set_epoch is not None:
            self.on_set_epoch()

    def __getstate__(self) -> dict:
        # The DataModule's callback stays in the main process.
        return {**self.__dict__, "on_set_epoch": None}

    def __iter__(self) -> Iterator[torch.Tensor]:
        worker, workers = _worker()
        # Loader worker 0 must deliver batch `skip` first: it plays slot skip % workers.
        slot = (worker + self.skip) % workers
        to_skip = max(0, -(-(self.skip - slot) // workers))
        for index, rows in enumerate(self._batches(self.rank * workers + slot,
                                                   self.world_size * workers)):
            if index >= to_skip:
                yield pack_batch(rows.ids, rows.doc_starts, self.document_masking, self.packing)

    def _batches(self, slot: int, slots: int) -> Iterator[PackedRows]:
        pending: list[PackedRows] = []
        pass_index = 0
        while self.passes is None or pass_index < self.passes:
            produced = 0
            for rows in self._pass_rows(slot, slots, pass_index):
                produced += len(rows)
                pending.append(rows)
                while sum(len(p) for p in pending) >= self.micro:
                    merged = PackedRows(np.concatenate([p.ids for p in pending]),
                                        [s for p in pending for s in p.doc_starts])
                    yield _take(merged, np.arange(self.micro))
                    rest = np.arange(self.micro, len(merged))
                    pending = [_take(merged, rest)] if len(rest) else []
            if not produced:
                # An endless stream would spin forever without a row to give.
                raise TTLError(
                    f"{self.source.describe()}: loader slot {slot} of {slots} (ranks x workers) got "
                    f"less than one row of {self.seq_len} tokens; use fewer workers or more text"
                )
            pass_index += 1

    def slot_documents(self, slot: int, slots: int, pass_index: int) -> Iterator[str]:
        """This slot's documents of one pass.

        With at least as many files as slots, each slot reads only its own files (dealt from
        a seeded order of the files, new each pass), several at a time, drawing each next
        document from a random one of them. With fewer files, every slot reads every file
        and keeps every slots-th document. Either way no two slots share a document.
        """
        units = len(self.source.units)
        order = permutation(units, self.seed, pass_index) if self.shuffle else np.arange(units)
        if units < slots:
            for index, text in enumerate(self.source.documents(order.tolist())):
                if index % slots == slot:
                    yield text
            return
        mine = [int(u) for u in order[slot::slots]]
        yield from _interleave([self.source.documents([u]) for u in mine],
                               OPEN_FILES if self.shuffle else 1, self.seed, pass_index, slot)

    def _pass_rows(self, slot: int, slots: int, pass_index: int) -> Iterator[PackedRows]:
        """One pass of this slot's rows, shuffled in a bounded buffer."""
        packer = RowPacker(self.seq_len)
        buffer = _ShuffleBuffer(self.shuffle_buffer if self.shuffle else 0, self.seed, pass_index, slot)
        batch: list[str] = []
        empty = 0
        for text in self.slot_documents(slot, slots, pass_index):
            if is_empty(text):
                empty += 1
                continue
            batch.append(text)
            if len(batch) == self.tokenize_batch_size:
                yield from buffer.push(packer.add(*encode_documents(self.tokenizer, batch, self.packing)))
                batch = []
        if batch:
            yield from buffer.push(packer.add(*encode_documents(self.tokenizer, batch, self.packing)))
        yield from buffer.drain()
        if empty:
            log.warning("skipped %d empty documents (slot %d, pass %d)", empty, slot, pass_index)


# Files a raw-text slot reads at once, so that its shuffle buffer mixes more than one file.
OPEN_FILES = 4


def _interleave(streams: list[Iterator[str]], width: int, *key: int) -> Iterator[str]:
    """Items of `streams`, up to `width` of them open at once, each next item drawn from a
    seeded random open stream; a finished stream makes room for the next one."""
    waiting = iter(streams)
    open_streams = [s for s in (next(waiting, None) for _ in range(width)) if s is not None]
    draws = _Draws(*key)
    while open_streams:
        index = draws.next() % len(open_streams)
        item = next(open_streams[index], _END)
        if item is _END:
            refill = next(waiting, None)
            if refill is None:
                open_streams.pop(index)
            else:
                open_streams[index] = refill
            continue
        yield item


_END = object()


def round_robin(iterators: list[Iterator]) -> Iterator:
    """One item from each iterator in turn, dropping each when it ends."""
    active = list(iterators)
    while active:
        for it in list(active):
            item = next(it, _END)
            if item is _END:
                active.remove(it)
            else:
                yield item


class _Draws:
    """An endless seeded sequence of random 64-bit integers, drawn in blocks."""

    def __init__(self, *key: int) -> None:
        self.key = key
        self._block = 0
        self._values = iter(())

    def next(self) -> int:
        value = next(self._values, None)
        if value is None:
            self._block += 1
            self._values = iter(random_keys(4096, *self.key, self._block).tolist())
            value = next(self._values)
        return value


class _ShuffleBuffer:
    """Bounded, seeded row shuffle: a full buffer emits a random resident row for each new one."""

    def __init__(self, size: int, *key: int) -> None:
        self.size = size
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._draw = _Draws(*key).next

    def push(self, rows: PackedRows) -> Iterator[PackedRows]:
        """Add rows; yield the rows that leave the buffer (as they come when size is 0)."""
        if self.size == 0:
            if len(rows):
                yield rows
            return
        out_ids, out_starts = [], []
        for row in range(len(rows)):
            item = (rows.ids[row], rows.doc_starts[row])
            if len(self.rows) < self.size:
                self.rows.append(item)
                continue
            slot = self._draw() % self.size
            out_ids.append(self.rows[slot][0])
            out_starts.append(self.rows[slot][1])
            self.rows[slot] = item
        if out_ids:
            yield PackedRows(np.stack(out_ids), out_starts)

    def drain(self) -> Iterator[PackedRows]:
        """Everything left, in a seeded random order."""
        if self.rows:
            order = np.argsort([self._draw() for _ in self.rows], kind="stable")
            yield PackedRows(np.stack([self.rows[i][0] for i in order]), [self.rows[i][1] for i in order])
        self.rows = []


class ValidationBatches(IterableDataset):
    """A fixed set of validation rows, in order, as micro-batches; rank r takes batches r, r+world, ...

    Iterable (no `__len__`, which Lightning warns about on iterable datasets) so that Lightning
    does not put a DistributedSampler on it: that sampler pads ranks with repeated rows, which
    would count them twice. Ranks left one batch short get a batch without labels instead,
    so every rank runs the same number of forward passes (FSDP's are collective) and each
    validation token still counts once.
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
            end = min(len(self.rows), (index + 1) * self.micro)
            part = _take(self.rows, np.arange(index * self.micro, end))
            yield pack_batch(part.ids, part.doc_starts, self.document_masking, self.packing)
        for _ in range(len(mine), -(-total // self.world_size)):
            yield lossless_batch(self.rows.ids[: self.micro])
