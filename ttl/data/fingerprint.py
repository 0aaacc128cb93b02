"""Fingerprints that tell whether two runs see the same tokenizer and the same text.

They are recorded in the shard manifest and in the training checkpoint, so that shards
prepared with another tokenizer, or a resume on changed data, are refused instead of
silently training on the wrong tokens.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ttl.data.sources import TextSource

# Bytes hashed at each end of a source file: enough to notice any rewrite, cheap on a
# multi-GB corpus (its size is hashed too).
_EDGE_BYTES = 1 << 20


def digest(value) -> str:
    """A short, stable SHA-256 of a JSON-serialisable value."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of what decides token ids: the tokenizer's full definition and its special ids."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
                tokenizer.unk_token_id]
    return digest([definition, specials, len(tokenizer)])


def file_fingerprint(name: str, hub: bool) -> list | str:
    """A Hub file's URL (pinned to a revision), or a local file's name, size and the hash of
    its first and last MiB."""
    if hub:
        return name
    path = Path(name)
    size = path.stat().st_size
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        sha.update(handle.read(_EDGE_BYTES))
        if size > _EDGE_BYTES:
            handle.seek(max(_EDGE_BYTES, size - _EDGE_BYTES))
            sha.update(handle.read())
    return [path.name, size, sha.hexdigest()[:16]]


def source_fingerprint(source: TextSource) -> str:
    """Hash of a text source: its files (local: name, size, edges; Hub: URLs pinned to a
    revision), its splits, its text column and its side of the held-out rule."""
    where = [file_fingerprint(f, source.corpus.hub) for f in source.files]
    rule = source.holdout.describe() if source.holdout is not None else None
    return digest([where, list(source.splits), source.text_column, rule, source.held_out])
