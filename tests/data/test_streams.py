"""Sharding over ranks and loader workers, and restart positions, at the dataset level."""

import pytest
import torch

from ttl.data.datamodule import BatchLoader
from ttl.data.manifest import read_manifest
from ttl.data.order import StreamPosition, advance
from ttl.data.shards import ShardReader
from ttl.data.streams import ShardStream

from .conftest import SEQ_LEN

MICRO = 4


def reader(shard_dir):
    return ShardReader(shard_dir, read_manifest(shard_dir).splits["train"].shards, SEQ_LEN)


def shard_batches(shard_dir, workers=0, rank=0, world=1, epochs=1, start=None, window=2):
    stream = ShardStream(reader(shard_dir), MICRO, seed=42, window=window, shuffle=True,
                         document_masking=False, packing="ttl", rank=rank, world_size=world, epochs=epochs)
    stream.start = start or StreamPosition()
    return [b["input_ids"] for b in BatchLoader(stream, batch_size=None, num_workers=workers)]


def rows(batches):
    return [tuple(r.tolist()) for b in batches for r in b]


def test_two_ranks_with_two_workers_each_cover_the_epoch_once(shard_dir):
    total = reader(shard_dir).rows
    per_rank = [rows(shard_batches(shard_dir, workers=2, rank=r, world=2)) for r in (0, 1)]
    union = per_rank[0] + per_rank[1]
    assert len(per_rank[0]) == len(per_rank[1])  # equal batch counts: DDP never waits
    assert len(set(union)) == len(union)  # disjoint (rows of the corpus are distinct)
    assert total - len(union) < MICRO * 2  # complete up to less than one round of micro-batches
    assert set(union) <= set(rows(shard_batches(shard_dir)))


def test_batches_do_not_depend_on_the_number_of_workers(shard_dir):
    single = shard_batches(shard_dir, workers=0)
    double = shard_batches(shard_dir, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(single, double, strict=True))


def test_order_depends_on_seed_and_epoch_only(shard_dir):
    two_epochs = shard_batches(shard_dir, epochs=2)
    per_epoch = len(two_epochs) // 2
    first, second = rows(two_epochs[:per_epoch]), rows(two_epochs[per_epoch:])
    # Same rows (but for the few each epoch leaves out at random), in another order.
    assert len(set(first) & set(second)) > len(first) - MICRO and first != second
    assert all(torch.equal(a, b) for a, b in zip(two_epochs, shard_batches(shard_dir, epochs=2), strict=True))


@pytest.mark.parametrize("world, workers", [(1, 2), (2, 0), (2, 2)])
def test_restart_position_continues_the_global_order_on_any_layout(shard_dir, world, workers):
    """Stop a 1-rank run after 37 micro-batches; restart on `world` ranks: the global order goes on."""
    total = reader(shard_dir).rows
    full = rows(shard_batches(shard_dir, epochs=2))
    position = advance(StreamPosition(), 37, total, MICRO, 1)
    assert position.epoch == 0
    ranks = [shard_batches(shard_dir, workers, r, world, epochs=1, start=position) for r in range(world)]
    # Interleave ranks back into global micro-batch order.
    merged = [b for group in zip(*ranks, strict=True) for b in group]
    assert rows(merged) == full[37 * MICRO: 37 * MICRO + len(merged) * MICRO]

