"""Fixtures of the data tests: a small prepared shard set from the shipped sample corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttl.data.config import PrepareConfig
from ttl.data.shardset import prepare

SEQ_LEN = 32


def prepare_shards(sample_dir: Path, tokenizer_dir: Path, out: Path, **overrides) -> Path:
    """Run `ttl.data.prepare` in-process with small rows and row groups; returns `out`."""
    args = {"data_path": sample_dir, "tokenizer": tokenizer_dir, "output_dir": out,
            "seq_len": SEQ_LEN, "rows_per_group": 64, "groups_per_shard": 4, "num_proc": 1,
            "batch_size": 32, **overrides}
    prepare(PrepareConfig(**{k: str(v) if isinstance(v, Path) else v for k, v in args.items()}))
    return out


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory, sample_dir, tiny_tokenizer_dir) -> Path:
    """The sample corpus prepared as shards of 32-token rows (64-row groups, 4 groups per file)."""
    return prepare_shards(sample_dir, tiny_tokenizer_dir, tmp_path_factory.mktemp("shards") / "sample")


@pytest.fixture(scope="session")
def prepared_cache(tmp_path_factory) -> Path:
    """A `data.prepared_dir` shared by the session's tests (sets prepared once are reused)."""
    return tmp_path_factory.mktemp("prepared")
