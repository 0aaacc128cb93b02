"""Tokenize documents and pack them into fixed-length blocks of token ids.

Conventions: `ttl` (TeenyTinyLlama's) prefixes each document with <s> and adds no </s>;
`eos` appends </s> to each document instead. Documents are concatenated and cut into
blocks of `seq_len` tokens; the final partial block is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ttl.errors import TTLError

PACKINGS = ("ttl", "eos")


@dataclass
class PackingStats:
    """Counters of a packing pass, reported to the user."""

    documents: int = 0
    empty_documents: int = 0
    tokens: int = 0
    blocks: int = 0


def check_packing(packing: str) -> None:
    """Refuse unknown packing conventions with the key at fault."""
    if packing not in PACKINGS:
        raise TTLError(f"data.packing={packing!r}: choose one of {', '.join(PACKINGS)}")


def tokenize_documents(tokenizer, texts: list[str], packing: str) -> list[list[int]]:
    """Token ids of each document with the packing convention's special tokens added."""
    # verbose=False: documents longer than the model's context are expected before packing.
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    if packing == "ttl":
        return [[tokenizer.bos_token_id, *doc] for doc in ids]
    return [[*doc, tokenizer.eos_token_id] for doc in ids]


@dataclass
class Packer:
    """Accumulates documents' token ids and emits full blocks of `seq_len` tokens."""

    seq_len: int
    stats: PackingStats = field(default_factory=PackingStats)
    _buffer: list[int] = field(default_factory=list)

    def add(self, doc_ids: list[int]) -> Iterator[list[int]]:
        """Append one document and yield every block that is now complete."""
        self.stats.documents += 1
        self.stats.tokens += len(doc_ids)
        self._buffer.extend(doc_ids)
        while len(self._buffer) >= self.seq_len:
            block = self._buffer[: self.seq_len]
            del self._buffer[: self.seq_len]
            self.stats.blocks += 1
            yield block

    def pack(
        self, texts: Iterable[str], tokenizer, packing: str, batch_size: int = 256
    ) -> Iterator[list[int]]:
        """Tokenize `texts` in batches and yield full blocks; empty documents are counted."""
        batch: list[str] = []
        for text in texts:
            if not text or not text.strip():
                self.stats.empty_documents += 1
                continue
            batch.append(text)
            if len(batch) == batch_size:
                for doc in tokenize_documents(tokenizer, batch, packing):
                    yield from self.add(doc)
                batch = []
        if batch:
            for doc in tokenize_documents(tokenizer, batch, packing):
                yield from self.add(doc)


