"""Parquet shards of packed rows: writing them in row groups, reading one row group at a time.

Each shard holds two columns: `input_ids` (fixed-size lists of `seq_len` token ids, uint16
when the vocabulary fits) and `doc_starts` (the offsets where documents start in the row).
Row groups are the unit of reading and shuffling, so a reader never holds more than a few
of them. Page checksums are written and verified, so a damaged file fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ttl.data.manifest import ShardInfo
from ttl.data.packing import PackedRows
from ttl.errors import TTLError


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def rows_to_table(rows: PackedRows, dtype: np.dtype) -> pa.Table:
    """An Arrow table of packed rows (fixed-size `input_ids`, variable `doc_starts`)."""
    ids = pa.FixedSizeListArray.from_arrays(pa.array(rows.ids.astype(dtype, copy=False).ravel()),
                                            rows.ids.shape[1])
    return pa.table({"input_ids": ids, "doc_starts": pa.array(rows.doc_starts, type=pa.list_(pa.int32()))})


def table_to_rows(table: pa.Table, seq_len: int) -> PackedRows:
    """Packed rows back from an Arrow table (no copy of the token ids)."""
    ids = table.column("input_ids").combine_chunks().flatten().to_numpy()
    starts = table.column("doc_starts").combine_chunks()
    offsets = starts.offsets.to_numpy()
    values = starts.values.to_numpy()
    doc_starts = [values[offsets[i]:offsets[i + 1]] for i in range(len(starts))]
    return PackedRows(ids.reshape(-1, seq_len), doc_starts)


class ShardWriter:
    """Writes packed rows of one split as `split/<prefix>-NNNNN.parquet` files of fixed row groups."""

    def __init__(self, root: Path, split: str, dtype: np.dtype, rows_per_group: int,
                 groups_per_shard: int, prefix: str = "shard") -> None:
        self.root, self.split, self.prefix, self.dtype = root, split, prefix, dtype
        self.rows_per_group, self.groups_per_shard = rows_per_group, groups_per_shard
        self.shards: list[ShardInfo] = []
        self._pending: PackedRows | None = None
        self._writer: pq.ParquetWriter | None = None
        self._groups: list[int] = []
        (root / split).mkdir(parents=True, exist_ok=True)

    def write(self, rows: PackedRows) -> None:
        """Queue rows; every full row group is written as soon as it is complete."""
        self._pending = rows if self._pending is None else PackedRows.concat([self._pending, rows])
        while len(self._pending) >= self.rows_per_group:
            self._flush(self.rows_per_group)

    def close(self) -> list[ShardInfo]:
        """Write the last (smaller) row group, close the open file, return the shards written."""
        if self._pending is not None and len(self._pending):
            self._flush(len(self._pending))
        self._close_file()
        return self.shards

    def _flush(self, count: int) -> None:
        group, self._pending = self._pending[:count], self._pending[count:]
        table = rows_to_table(group, self.dtype)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path(), table.schema, compression="zstd",
                                            write_page_checksum=True)
        self._writer.write_table(table, row_group_size=count)
        self._groups.append(count)
        if len(self._groups) >= self.groups_per_shard:
            self._close_file()

    def _path(self) -> Path:
        return self.root / self.split / f"{self.prefix}-{len(self.shards):05d}.parquet"

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            path = self._path()
            self.shards.append(ShardInfo(path.relative_to(self.root).as_posix(), path.stat().st_size,
                                         list(self._groups)))
            self._writer = None
            self._groups = []


@dataclass(frozen=True)
class Chunk:
    """One row group of one shard: the unit of reading and of shuffling."""

    shard: int
    group: int
    rows: int


class ShardReader:
    """Reads the row groups of a split's shards, checking them against the manifest."""

    def __init__(self, root: Path, shards: list[ShardInfo], seq_len: int) -> None:
        self.root, self.shards, self.seq_len = root, shards, seq_len
        self.chunks = [Chunk(i, g, n) for i, s in enumerate(shards) for g, n in enumerate(s.row_groups)]
        self._open: dict[int, pq.ParquetFile] = {}

    @property
    def rows(self) -> int:
        """Rows in all shards."""
        return sum(c.rows for c in self.chunks)

    def verify(self) -> None:
        """Check every shard exists, has the recorded size and row groups (reads footers only)."""
        for index, info in enumerate(self.shards):
            path = self.root / info.path
            if not path.is_file():
                raise TTLError(f"{path}: shard listed in the manifest is missing")
            size = path.stat().st_size
            if size != info.bytes:
                raise TTLError(
                    f"{path}: shard has {size:,} bytes but the manifest records {info.bytes:,} "
                    "(truncated or rewritten); prepare the shards again"
                )
            meta = self._file(index).metadata
            groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            if groups != info.row_groups:
                raise TTLError(f"{path}: row groups {groups} differ from the manifest's {info.row_groups}")

    def _file(self, index: int) -> pq.ParquetFile:
        if index not in self._open:
            path = self.root / self.shards[index].path
            try:
                self._open[index] = pq.ParquetFile(path, page_checksum_verification=True)
            except Exception as error:  # pyarrow raises several types for damaged files
                raise TTLError(f"{path}: unreadable parquet shard ({error})") from error
        return self._open[index]

    def read(self, chunk: Chunk) -> PackedRows:
        """The rows of one row group."""
        file, path = self._file(chunk.shard), self.root / self.shards[chunk.shard].path
        try:
            rows = table_to_rows(file.read_row_group(chunk.group), self.seq_len)
        except Exception as error:
            raise TTLError(f"{path}: row group {chunk.group} is unreadable ({error})") from error
        if len(rows) != chunk.rows:
            raise TTLError(f"{path}: row group {chunk.group} has {len(rows)} rows, expected {chunk.rows}")
        return rows

    def __getstate__(self) -> dict:
        # Open files do not travel to dataloader workers; each worker opens its own.
        return {**self.__dict__, "_open": {}}
