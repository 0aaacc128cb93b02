"""The order in which training rows are seen: a pure function of the seed and the epoch.

Each epoch permutes the shards' row groups ("chunks"), cuts that order into windows of `window`
chunks and permutes the rows within each window: every row once, with the memory of one window.
Global micro-batch j (rows [j*B, (j+1)*B) of that order) goes to rank j % world, so every rank
takes floor(rows / (B * world)) per epoch (the few rows left over differ each epoch). A stream
position (epoch, row) counts the rows all ranks consumed together, so a resume may change the
ranks, workers or micro-batch size and still continue the same order.

Random numbers are PCG64 raw outputs (stable across NumPy versions), never `Generator` methods,
whose algorithms may change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def permutation(n: int, *key: int) -> np.ndarray:
    """A random permutation of range(n), a pure function of `key`."""
    bits = np.random.PCG64(np.random.SeedSequence([int(k) for k in key]))
    return np.argsort(bits.random_raw(n), kind="stable")


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream stands: rows of `epoch`'s global order consumed by all ranks together."""

    epoch: int = 0
    row: int = 0


class EpochOrder:
    """The global row order of one epoch over chunks of known sizes."""

    def __init__(self, chunk_rows: list[int], seed: int, epoch: int, window: int,
                 shuffle: bool = True) -> None:
        self.chunk_rows = np.asarray(chunk_rows, dtype=np.int64)
        self.seed, self.epoch, self.shuffle = seed, epoch, shuffle
        n = len(chunk_rows)
        chunks = permutation(n, seed, epoch) if shuffle else np.arange(n)
        self.windows = [chunks[i:i + window] for i in range(0, n, max(1, window))]
        sizes = [int(self.chunk_rows[w].sum()) for w in self.windows]
        self.window_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def rows(self) -> int:
        """Rows in the epoch."""
        return int(self.window_starts[-1])

    def row_permutation(self, window: int) -> np.ndarray:
        """Order of the rows of `window` (its chunks concatenated in window order)."""
        size = int(self.window_starts[window + 1] - self.window_starts[window])
        return permutation(size, self.seed, self.epoch, window + 1) if self.shuffle else np.arange(size)


def batches_per_rank(rows: int, start_row: int, micro: int, world: int) -> int:
    """Micro-batches each rank takes from an epoch of `rows` rows, starting at `start_row`."""
    return max(0, rows - start_row) // (micro * world)


def batch_positions(start_row: int, index: int, micro: int, world: int, rank: int) -> np.ndarray:
    """Global positions of rank `rank`'s `index`-th micro-batch counted from `start_row`."""
    first = start_row + (index * world + rank) * micro
    return np.arange(first, first + micro, dtype=np.int64)


def advance(position: StreamPosition, batches: int, epoch_rows: int, micro: int,
            world: int) -> StreamPosition:
    """The position after every rank consumed `batches` more micro-batches from `position`."""
    if batches <= 0:
        return position
    per_epoch = batches_per_rank(epoch_rows, 0, micro, world)
    left = batches_per_rank(epoch_rows, position.row, micro, world)
    if batches < left:
        return StreamPosition(position.epoch, position.row + batches * micro * world)
    batches -= left
    epoch = position.epoch + 1 + batches // per_epoch
    return StreamPosition(epoch, (batches % per_epoch) * micro * world)
