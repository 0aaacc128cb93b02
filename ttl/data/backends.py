"""The two kinds of training data behind the DataModule: prepared shards and raw text.

Each backend opens its data (failing early, naming the file or key), builds the training
stream and the fixed validation rows, states what a resume must find unchanged (its
fingerprint), and turns "micro-batches processed since the stream started" into a resumable
position and back.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ttl.data.cache import prepared_shards, sources
from ttl.data.config import DataSettings
from ttl.data.fingerprint import source_fingerprint, tokenizer_fingerprint
from ttl.data.hub import resolve_shard_dir
from ttl.data.manifest import MANIFEST, check_against, read_manifest
from ttl.data.order import StreamPosition, advance
from ttl.data.packing import PackedRows, RowPacker, encode_documents, is_empty
from ttl.data.shards import ShardReader
from ttl.data.sources import TextSource, iter_documents
from ttl.data.streams import RawTextStream, ShardStream, round_robin
from ttl.errors import TTLError

log = logging.getLogger(__name__)


def _concat(parts: list[PackedRows], seq_len: int, limit: int | None) -> PackedRows:
    if not parts:
        return PackedRows(np.empty((0, seq_len), dtype=np.int64), [])
    ids = np.concatenate([p.ids for p in parts])
    starts = [s for p in parts for s in p.doc_starts]
    end = len(ids) if limit is None else min(limit, len(ids))
    return PackedRows(ids[:end], starts[:end])


class ShardData:
    """Prepared shards (`python -m ttl.data.prepare`, or prepared on first use into the cache),
    local or downloaded from the Hub."""

    kind = "shards"

    def __init__(self, settings: DataSettings, tokenizer, micro_batch_size: int,
                 prepare_first: bool = False) -> None:
        self.settings, self.tokenizer, self.micro = settings, tokenizer, micro_batch_size
        # Raw text at data.path: prepare it into the cache first (data.format=auto).
        self.prepare_first = prepare_first

    def open(self) -> tuple[ShardStream, PackedRows, str]:
        """Check the manifest against the run and every shard's footer; build the stream."""
        s = self.settings
        root = prepared_shards(s, self.tokenizer) if self.prepare_first else resolve_shard_dir(s.path)
        manifest = read_manifest(root)
        check_against(manifest, root, tokenizer_fingerprint(self.tokenizer),
                      str(getattr(self.tokenizer, "name_or_path", "")), len(self.tokenizer),
                      s.seq_len, s.packing)
        for split in ("train", "validation"):
            if split not in manifest.splits:
                raise TTLError(f"{root / MANIFEST}: no {split!r} split")
        self.root, self.manifest, self.packing = root, manifest, manifest.packing
        train = ShardReader(root, manifest.splits["train"].shards, s.seq_len)
        train.verify()
        val = ShardReader(root, manifest.splits["validation"].shards, s.seq_len)
        val.verify()
        stream = ShardStream(train, self.micro, s.seed, s.shuffle_window, s.shuffle,
                             s.document_masking, self.packing)
        log.info("shards: %s, %d training rows of %d tokens", root, train.rows, s.seq_len)
        self.validation_rows = self._validation(val)
        return stream, self.validation_rows, f"{root / 'validation'}"

    def _validation(self, reader: ShardReader) -> PackedRows:
        """All validation rows, or `max_val_blocks` of them evenly spaced over the split (its
        files are in source order, so the first rows would come from the first files only)."""
        limit, total = self.settings.max_val_blocks, reader.rows
        wanted = np.arange(total) if limit is None or limit >= total else \
            np.linspace(0, total - 1, limit).round().astype(np.int64)
        parts, first = [], 0
        for chunk in reader.chunks:
            inside = wanted[(wanted >= first) & (wanted < first + chunk.rows)] - first
            if len(inside):
                rows = reader.read(chunk)
                parts.append(PackedRows(rows.ids[inside], [rows.doc_starts[i] for i in inside]))
            first += chunk.rows
        return _concat(parts, self.settings.seq_len, None)

    def describe(self) -> dict:
        """What the run trains and validates on, for the run directory's data.json."""
        m = self.manifest
        return {"format": "shards", "shards": str(self.root), "source": m.source,
                "source_splits": m.source_splits, "holdout": m.holdout,
                "train": {"rows": m.splits["train"].rows, "tokens": m.splits["train"].tokens,
                          "documents": m.splits["train"].documents},
                "validation": {"rows": m.splits["validation"].rows,
                               "documents": m.splits["validation"].documents,
                               "rows_used": len(self.validation_rows)}}

    def fingerprint(self) -> dict:
        """Manifest identity (tokenizer, seq_len, source, shards) and the order's settings."""
        m, s = self.manifest, self.settings
        return {"manifest": m.fingerprint, "tokenizer": m.tokenizer_fingerprint, "seq_len": m.seq_len,
                "source": m.source_fingerprint, "rows": m.splits["train"].rows,
                "order": [s.seed, s.shuffle, s.shuffle_window if s.shuffle else None]}

    def position(self, stream: ShardStream, done: int, world: int) -> dict:
        """The global position after `done` more micro-batches per rank on `world` ranks."""
        at = advance(stream.start, done, stream.reader.rows, self.micro, world)
        return {"epoch": at.epoch, "row": at.row}

    def restart(self, stream: ShardStream, state: dict, world: int) -> None:
        """Start the stream at a saved position (any number of ranks, workers, micro-batch)."""
        stream.start = StreamPosition(int(state["epoch"]), int(state["row"]))

    def check_size(self, stream: ShardStream, world: int) -> None:
        """Refuse a training split smaller than one micro-batch per rank."""
        if stream.reader.rows < self.micro * world:
            raise TTLError(
                f"data.path={self.settings.path}: the training split holds {stream.reader.rows} rows, "
                f"fewer than one micro-batch ({self.micro}) on each of {world} device(s)"
            )


class RawData:
    """Raw text (local files or a Hub dataset), tokenized and packed on the fly."""

    kind = "raw"

    def __init__(self, settings: DataSettings, tokenizer, micro_batch_size: int) -> None:
        self.settings, self.tokenizer, self.micro = settings, tokenizer, micro_batch_size
        self.packing = settings.packing or "ttl"

    def open(self) -> tuple[RawTextStream, PackedRows, str]:
        """Resolve both splits (reading a first document now: a bad path fails here)."""
        s = self.settings
        train, validation = sources(s)
        if next(iter_documents(train), None) is None:
            raise TTLError(f"data.path={s.path}: the training split has no documents")
        self._fingerprint = {"tokenizer": tokenizer_fingerprint(self.tokenizer),
                             "source": source_fingerprint(train), "seq_len": s.seq_len,
                             "packing": self.packing,
                             "order": [s.seed, s.shuffle, s.shuffle_buffer, s.tokenize_batch_size]}
        stream = RawTextStream(train, self.tokenizer, s.seq_len, self.packing, self.micro, s.seed,
                               s.shuffle, s.shuffle_buffer, s.tokenize_batch_size, s.document_masking)
        self.train, self.validation = train, validation
        self.validation_rows, self.validation_documents = self._validation(validation)
        return stream, self.validation_rows, validation.describe()

    def _validation(self, source: TextSource) -> tuple[PackedRows, int]:
        """Validation rows from documents taken from every file in turn (up to max_val_blocks),
        so they represent the whole source, not its first file; and the documents used."""
        s = self.settings
        packer, parts, batch = RowPacker(s.seq_len), [], []
        streams = [source.documents([unit]) for unit in range(len(source.units))]
        documents = round_robin(streams)
        used = 0
        while s.max_val_blocks is None or sum(len(p) for p in parts) < s.max_val_blocks:
            text = next(documents, None)
            if batch and (text is None or len(batch) == s.tokenize_batch_size):
                parts.append(packer.add(*encode_documents(self.tokenizer, batch, self.packing)))
                batch = []
            if text is None:
                break
            if not is_empty(text):
                batch.append(text)
                used += 1
        if used == 0:
            raise TTLError(f"data.path={s.path}: the validation split ({source.describe()}) holds "
                           "no documents")
        return _concat(parts, s.seq_len, s.max_val_blocks), used

    def describe(self) -> dict:
        """What the run trains and validates on, for the run directory's data.json."""
        rule = self.validation.holdout
        return {"format": "raw", "source": self.settings.path,
                "train": self.train.describe(), "validation": self.validation.describe(),
                "holdout": rule.describe() if rule else None,
                "validation_rows": len(self.validation_rows),
                "validation_documents_used": self.validation_documents}

    def fingerprint(self) -> dict:
        """Tokenizer, text, packing and every setting the on-the-fly order depends on."""
        return self._fingerprint

    def position(self, stream: RawTextStream, done: int, world: int) -> dict:
        """The layout the stream depends on (the batch count is the position)."""
        return {"world_size": world, "num_workers": max(1, self.settings.num_workers),
                "micro_batch_size": self.micro}

    def restart(self, stream: RawTextStream, state: dict, world: int) -> None:
        """Replay: skip the micro-batches before the resume point (same layout required)."""
        # The stream deals documents to (rank, worker) slots and cuts micro-batches per slot:
        # continuing it exactly needs the same slots and micro-batch size.
        now = self.position(stream, 0, world)
        changed = [f"{k}: checkpoint {state.get(k)}, now {v}" for k, v in now.items() if state.get(k) != v]
        if changed:
            raise TTLError(
                "cannot resume raw-text data exactly on another layout (" + "; ".join(changed) +
                "); keep data.num_workers, the devices and the micro-batch, or prepare shards with "
                "`python -m ttl.data.prepare` (their resume allows any layout)"
            )
        stream.skip = int(state["batches"])

    def check_size(self, stream: RawTextStream, world: int) -> None:
        """Nothing to check before reading: a slot without documents fails when it reads."""


def backend_for(settings: DataSettings, tokenizer, micro_batch_size: int) -> ShardData | RawData:
    """data.format: shards, raw, or auto (a manifest.json at data.path: those shards; raw text:
    shards prepared into the cache on first use)."""
    if settings.format == "raw":
        return RawData(settings, tokenizer, micro_batch_size)
    prepared = settings.format == "shards" or (Path(settings.path).expanduser() / MANIFEST).is_file()
    return ShardData(settings, tokenizer, micro_batch_size, prepare_first=not prepared)
