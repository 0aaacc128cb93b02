"""ttl.data.order: seeded epoch order, dealing to ranks, stream positions."""

import numpy as np

from ttl.data.order import (
    EpochOrder,
    StreamPosition,
    advance,
    batch_positions,
    batches_per_rank,
    permutation,
)

SIZES = [64, 64, 64, 17, 64, 40]


def global_order(order: EpochOrder) -> np.ndarray:
    """Storage row index at each global position, window by window."""
    offsets = np.concatenate([[0], np.cumsum(order.chunk_rows)])
    out = []
    for w, chunks in enumerate(order.windows):
        rows = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in chunks])
        out.append(rows[order.row_permutation(w)])
    return np.concatenate(out)


def test_permutation_is_a_pure_function_of_its_key():
    assert permutation(50, 1, 2).tolist() == permutation(50, 1, 2).tolist()
    assert permutation(50, 1, 2).tolist() != permutation(50, 1, 3).tolist()
    assert sorted(permutation(50, 7).tolist()) == list(range(50))


def test_each_epoch_visits_every_row_once_in_a_new_order():
    first, second = (global_order(EpochOrder(SIZES, 42, e, window=2)) for e in (0, 1))
    assert sorted(first.tolist()) == list(range(sum(SIZES))) == sorted(second.tolist())
    assert first.tolist() != second.tolist()
    assert global_order(EpochOrder(SIZES, 42, 0, window=2, shuffle=False)).tolist() == list(range(313))


def test_ranks_take_disjoint_micro_batches_and_leave_less_than_one_round():
    rows, micro, world = sum(SIZES), 4, 3
    count = batches_per_rank(rows, 0, micro, world)
    taken = [batch_positions(0, i, micro, world, r) for r in range(world) for i in range(count)]
    flat = np.concatenate(taken)
    assert len(set(flat.tolist())) == flat.size == count * micro * world
    assert rows - flat.size < micro * world and flat.max() < rows


def test_advance_matches_counting_batch_by_batch():
    rows, micro, world = 100, 4, 2  # 12 batches per rank per epoch, 4 rows left over; 9 left in epoch 0
    position = StreamPosition(0, 24)
    walked = position
    for _ in range(40):
        walked = advance(walked, 1, rows, micro, world)
    assert walked == advance(position, 40, rows, micro, world) == StreamPosition(3, 56)
