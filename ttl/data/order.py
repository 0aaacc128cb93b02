"""The order in which training rows are seen: a pure function of the seed and the epoch.

Prepared shards are read as row groups ("chunks"). For each epoch the chunks are permuted;
consecutive chunks of that order form shuffle windows of `window` chunks, and the rows of a
window are permuted. Concatenating the windows gives the epoch's global row order: every row
exactly once, with the memory of one window.

That global order is dealt to DDP ranks in micro-batches: global micro-batch j (rows
[j*B, (j+1)*B) of the order) goes to rank j % world, so rank r's i-th micro-batch of an
epoch is global micro-batch i*world + r. Each rank therefore sees the same number of
micro-batches, floor(rows / (B * world)) per epoch; fewer than B * world rows at the end of
each epoch's order are left out (a different random set each epoch).

A stream position is (epoch, row): the number of rows of the epoch's global order already
consumed by all ranks together. It does not depend on the number of ranks, workers or the
micro-batch size, so a resume may change them and still continue the same global order.

Random numbers come from PCG64 raw outputs (a stream NumPy keeps stable across versions),
never from `Generator` methods, whose algorithms may change.
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

    def window_of(self, positions: np.ndarray) -> np.ndarray:
        """Index of the window holding each global position."""
        return np.searchsorted(self.window_starts, positions, side="right") - 1

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
