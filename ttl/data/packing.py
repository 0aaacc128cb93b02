"""Tokenize documents and pack them into fixed-length blocks of token ids (for prepared shards
and evaluation alike).

Conventions: `ttl` (TeenyTinyLlama's) prefixes each document with <s> and adds no </s>; `eos`
appends </s> instead. Documents are concatenated and cut into blocks of `seq_len` tokens, a long
one continuing in the next block(s); the final partial block is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttl.data.manifest import SplitInfo
from ttl.data.wordcache import encoder_for
from ttl.errors import TTLError

PACKINGS = ("ttl", "eos")
INT64 = np.dtype(np.int64)


def check_packing(packing: str) -> None:
    """Refuse unknown packing conventions with the key at fault."""
    if packing not in PACKINGS:
        raise TTLError(f"data.packing={packing!r}: choose one of {', '.join(PACKINGS)}")


def is_empty(text: str | None) -> bool:
    """Whether a document has no content worth a token (None, "", whitespace only)."""
    return not text or not text.strip()


def encode_documents(tokenizer, texts: list[str], packing: str,
                     dtype: np.dtype = INT64) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize non-empty `texts` in the packing convention: (flat token ids, per-document lengths).

    Through `ttl.data.wordcache` when it can, else `encode_batch_fast` (no offsets), else the call."""
    encoder = encoder_for(tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if encoder is not None:
        docs = encoder.encode(texts)
    elif backend is not None and hasattr(backend, "encode_batch_fast"):
        docs = [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    else:
        docs = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    special = tokenizer.bos_token_id if packing == "ttl" else tokenizer.eos_token_id
    lengths = np.fromiter((len(d) + 1 for d in docs), dtype=np.int64, count=len(docs))
    flat = np.empty(int(lengths.sum()), dtype=dtype)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    # The special token's slot in each document, then the text ids around it.
    special_at = starts if packing == "ttl" else ends - 1
    flat[special_at] = special
    body = np.ones(flat.shape[0], dtype=bool)
    body[special_at] = False
    if flat.shape[0]:
        flat[body] = np.fromiter((t for d in docs for t in d), dtype=dtype, count=int(body.sum()))
    return flat, lengths


@dataclass
class PackedRows:
    """A run of packed rows: token ids (n, seq_len) and, per row, where documents start in it."""

    ids: np.ndarray
    doc_starts: list[np.ndarray]

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, index) -> PackedRows:
        """The rows at `index` (a slice or an array of row numbers)."""
        picked = np.arange(len(self))[index]
        return PackedRows(self.ids[picked], [self.doc_starts[i] for i in picked])

    @staticmethod
    def concat(parts: list[PackedRows]) -> PackedRows:
        """The rows of `parts`, one after the other."""
        return PackedRows(np.concatenate([p.ids for p in parts]), [s for p in parts for s in p.doc_starts])


class RowPacker:
    """Takes documents in batches, returns every full row with its document starts (none at 0 in
    a row that begins mid-document; a document longer than `seq_len` spans several rows)."""

    def __init__(self, seq_len: int, dtype: np.dtype = INT64) -> None:
        self.seq_len = seq_len
        self.dtype = np.dtype(dtype)
        # The manifest's counts of a split, so far: rows, packed tokens, documents, long ones.
        self.stats = SplitInfo()
        self._tail = np.empty(0, dtype=self.dtype)
        # Offsets (in the tail) where documents start.
        self._tail_starts = np.empty(0, dtype=np.int64)

    def add(self, flat: np.ndarray, lengths: np.ndarray) -> PackedRows:
        """Append documents (flat ids + lengths, as `encode_documents` returns) and cut rows."""
        t = self.seq_len
        self.stats.documents += int(lengths.shape[0])
        self.stats.long_documents += int((lengths > t).sum())
        doc_offsets = np.cumsum(lengths) - lengths + self._tail.shape[0]
        stream = np.concatenate([self._tail, flat.astype(self.dtype, copy=False)])
        starts = np.concatenate([self._tail_starts, doc_offsets])
        n = stream.shape[0] // t
        ids = stream[: n * t].reshape(n, t)
        # Split the sorted start offsets by the row they fall in.
        cuts = np.searchsorted(starts, np.arange(1, n + 1) * t)
        per_row = np.split(starts[: cuts[-1] if n else 0], cuts[:-1]) if n else []
        rows = PackedRows(ids, [s - i * t for i, s in enumerate(per_row)])
        self._tail = stream[n * t:].copy()
        self._tail_starts = starts[cuts[-1]:] - n * t if n else starts
        self.stats.rows += n
        self.stats.tokens += n * t
        self.stats.dropped_tokens = self.remainder
        return rows

    @property
    def remainder(self) -> int:
        """Tokens held back because they do not fill a row (dropped at the end of a pass)."""
        return int(self._tail.shape[0])


def position_ids_for(doc_starts: list[np.ndarray], seq_len: int) -> np.ndarray:
    """Position ids that restart at 0 at each row start and at each document start."""
    n = len(doc_starts)
    marks = np.zeros((n, seq_len), dtype=bool)
    marks[:, 0] = True
    for row, starts in enumerate(doc_starts):
        marks[row, starts] = True
    index = np.broadcast_to(np.arange(seq_len), (n, seq_len))
    # For every position, the offset of the most recent segment start at or before it.
    last_start = np.maximum.accumulate(np.where(marks, index, 0), axis=1)
    return index - last_start
