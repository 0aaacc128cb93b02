"""`manifest.json` of a prepared shard set: what the shards hold and how they were made.

Written last, its presence marks a complete set; training checks it against the run's
tokenizer and config before reading a single row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ttl.data.fingerprint import digest, tokenizer_fingerprint
from ttl.errors import TTLError
from ttl.rundir import write_json

MANIFEST = "manifest.json"
FORMAT = "ttl-packed-shards"
FORMAT_VERSION = 1


@dataclass
class ShardInfo:
    """One parquet file: its path (relative to the set's root), bytes, and rows per row group."""

    path: str
    bytes: int
    row_groups: list[int]

    @property
    def rows(self) -> int:
        """Rows in the file."""
        return sum(self.row_groups)


@dataclass
class SplitInfo:
    """Counts and shards of one split (train or validation)."""

    rows: int = 0
    tokens: int = 0
    documents: int = 0
    empty_documents: int = 0
    long_documents: int = 0
    dropped_tokens: int = 0
    shards: list[ShardInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> SplitInfo:
        """Parse a split as `asdict` wrote it."""
        return cls(**{**data, "shards": [ShardInfo(**s) for s in data["shards"]]})


@dataclass
class Manifest:
    """Everything a consumer must agree with before it trains on the shards."""

    seq_len: int
    packing: str
    dtype: str
    vocab_size: int
    tokenizer_fingerprint: str
    tokenizer_name: str
    source_fingerprint: str
    source: str
    text_column: str
    rows_per_group: int
    splits: dict[str, SplitInfo]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    created_at: str = ""
    # Where each split came from: {"train": "train", "validation": "train (held out)"}.
    source_splits: dict[str, str] | None = None
    # The held-out rule (ttl.data.holdout) and its counts, when the source had no validation split.
    holdout: dict | None = None

    @property
    def fingerprint(self) -> str:
        """Identity of the data (the creation time excluded): equal fingerprints, equal rows."""
        content = asdict(self)
        content.pop("created_at")
        # Fields added after the first sets were made count only when set, so that older
        # manifests keep their fingerprint (and runs trained on them keep resuming).
        for key in ("source_splits", "holdout"):
            if content[key] is None:
                content.pop(key)
        return digest(content)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """Parse a manifest dict (as `write_manifest` wrote it)."""
        data = dict(data)
        data.pop("fingerprint", None)
        splits = {name: SplitInfo.from_dict(split) for name, split in data.pop("splits").items()}
        return cls(**data, splits=splits)


def write_manifest(manifest: Manifest, directory: Path) -> Path:
    """Write `directory/manifest.json` atomically, with its fingerprint for people and scripts."""
    return write_json(directory / MANIFEST, {**asdict(manifest), "fingerprint": manifest.fingerprint})


def read_manifest(directory: Path) -> Manifest:
    """Read `directory/manifest.json`, naming the file in every error."""
    path = directory / MANIFEST
    if not path.is_file():
        raise TTLError(
            f"{path}: no manifest; prepare shards with `python -m ttl.data.prepare` "
            "(or use data.format=auto for raw text: it prepares them on first use)"
        )
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {data.get('format_version')} is not {FORMAT_VERSION}")
        return Manifest.from_dict(data)
    except (ValueError, TypeError, KeyError) as error:
        raise TTLError(f"{path}: not a valid ttl shard manifest ({error})") from error


def check_against(manifest: Manifest, path: Path, tokenizer, seq_len: int, packing: str | None) -> None:
    """Refuse shards made for another tokenizer, sequence length or packing convention."""
    where, tokenizer_fp = path / MANIFEST, tokenizer_fingerprint(tokenizer)
    if manifest.tokenizer_fingerprint != tokenizer_fp:
        raise TTLError(
            f"{where}: shards were tokenized with {manifest.tokenizer_name} "
            f"(fingerprint {manifest.tokenizer_fingerprint}, {manifest.vocab_size:,} tokens) but "
            f"tokenizer.path={getattr(tokenizer, 'name_or_path', '')} has fingerprint {tokenizer_fp} "
            f"({len(tokenizer):,} tokens); prepare the shards again with this tokenizer"
        )
    if manifest.seq_len != seq_len:
        raise TTLError(
            f"{where}: shards hold rows of seq_len={manifest.seq_len} but data.seq_len={seq_len}; "
            "prepare the shards again with this seq_len"
        )
    if packing is not None and manifest.packing != packing:
        raise TTLError(
            f"{where}: shards were packed with packing={manifest.packing!r} but "
            f"data.packing={packing!r}; set data.packing=null to take the manifest's"
        )
