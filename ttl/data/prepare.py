"""`python -m ttl.data.prepare data_path=... tokenizer=... output_dir=... [key=value ...]`

Raw text (a Hub dataset id, a local copy of one, or local parquet / jsonl / txt files) + a
tokenizer -> packed token shards for `data.format=shards`:

    OUTPUT_DIR/train/shard-JJJJJ-NNNNN.parquet ...   rows of seq_len tokens + document starts
    OUTPUT_DIR/validation/shard-JJJJJ-NNNNN.parquet ...
    OUTPUT_DIR/manifest.json                         tokenizer and source fingerprints, counts,
                                                     the held-out rule

A source without a validation split (Pt-Corpus-Instruct has only `train`) gets one by the
held-out rule of `ttl.data.holdout` (`val_fraction`, or `val_documents`): decided per
document by its content, and never written to the training side. Documents are read file by
file, tokenized on `num_proc` processes in order (the output does not depend on
`num_proc`), packed and written row group by row group, so memory stays flat however large
the corpus. The set is built in `OUTPUT_DIR.partial`, resumable file by file (re-run the
same command after an interruption), and renamed when complete; `push_to_hub=owner/name`
then uploads it. `ttl.train` does the same on first use when `data.format=auto` points at
raw text (see `ttl.data.cache`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from ttl.bpe import load_tokenizer
from ttl.data.holdout import check_fraction
from ttl.data.hub import push_shards
from ttl.data.manifest import Manifest
from ttl.data.packing import check_packing
from ttl.data.shardset import build_shard_set
from ttl.data.sources import open_corpus, resolve_source
from ttl.errors import TTLError

DEFAULTS = {
    "data_path": "???",
    "tokenizer": "???",
    "output_dir": "???",
    "seq_len": 2048,
    "packing": "ttl",
    "text_column": "text",
    "train_split": "train",
    "val_split": "validation",
    # Without a validation split: the share of documents held out (by content hash), or a
    # count of documents (val_documents, which then sets the share).
    "val_fraction": 0.01,
    "val_documents": None,
    # Tokenizing processes; null = every core of this machine.
    "num_proc": None,
    # Documents per tokenization task.
    "batch_size": 512,
    # Rows per parquet row group (the unit of reading and of the training shuffle) and row
    # groups per file.
    "rows_per_group": 128,
    "groups_per_shard": 512,
    # Stop after reading this many source documents (null = all): quick trials.
    "max_documents": None,
    "overwrite": False,
    "push_to_hub": None,
    "private": True,
}


def prepare(cfg, tokenizer=None, say=print, progress: bool = True) -> Manifest:
    """Build the shard set described by `cfg` (see DEFAULTS); returns its manifest.

    Everything the user can get wrong (paths, splits, the text column, a damaged parquet
    file, the tokenizer) fails before anything is written.
    """
    check_packing(cfg.packing)
    if cfg.seq_len < 2:
        raise TTLError(f"seq_len={cfg.seq_len}: must be at least 2")
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and not cfg.overwrite:
        raise TTLError(f"output_dir={out} already exists; choose another or pass overwrite=true")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer)
    corpus = open_corpus(str(cfg.data_path))
    train, validation = (
        resolve_source(str(cfg.data_path), split, cfg.text_column, cfg.train_split, cfg.val_split,
                       cfg.val_fraction, cfg.val_documents, corpus=corpus)
        for split in (cfg.train_split, cfg.val_split)
    )
    return build_shard_set(cfg, out, tokenizer, train, validation, say=say, progress=progress)


def summary(manifest: Manifest, out: str, seconds: float) -> list[str]:
    """Lines reporting what was written, for people."""
    lines = [f"prepared {out} ({manifest.dtype}, seq_len {manifest.seq_len}, packing {manifest.packing})"]
    for name, s in manifest.splits.items():
        lines.append(
            f"  {name}: {s.rows:,} rows = {s.tokens:,} tokens in {len(s.shards)} shard(s); "
            f"{s.documents:,} documents ({s.long_documents:,} longer than a row, split across rows); "
            f"{s.dropped_tokens:,} tail tokens dropped"
        )
    if manifest.holdout:
        h = manifest.holdout
        lines.append(f"  held out by content hash: {h['fraction']:.4%} of documents -> "
                     f"{h['held_out_documents']:,} validation documents, never in the train split")
    tokens = sum(s.tokens + s.dropped_tokens for s in manifest.splits.values())
    lines.append(f"  {tokens:,} tokens in {seconds:.1f} s = {tokens / max(seconds, 1e-9):,.0f} tokens/s")
    return lines


def _parse(args: list[str]):
    unknown = [a.split("=", 1)[0] for a in args if a.split("=", 1)[0] not in DEFAULTS]
    if unknown or any("=" not in a for a in args):
        raise TTLError(
            f"unknown argument {(unknown or args)[0]!r}; use key=value with keys {', '.join(DEFAULTS)}"
        )
    return OmegaConf.from_dotlist(args)


def load_config(args: list[str]):
    """DEFAULTS merged with key=value arguments, checked."""
    try:
        cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), _parse(args))
    except TTLError:
        raise
    except Exception as error:
        raise TTLError(f"bad argument: {str(error).splitlines()[0]}") from error
    for key in ("data_path", "tokenizer", "output_dir"):
        if OmegaConf.is_missing(cfg, key):
            raise TTLError(f"{key} is required: python -m ttl.data.prepare data_path=... "
                           "tokenizer=DIR output_dir=DIR")
    for key in ("seq_len", "batch_size", "rows_per_group", "groups_per_shard"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 1:
            raise TTLError(f"{key}={cfg[key]!r}: expected a positive integer")
    check_fraction(cfg.val_fraction, "val_fraction")
    for key in ("val_documents", "max_documents"):
        if cfg[key] is not None and (not isinstance(cfg[key], int) or isinstance(cfg[key], bool)
                                     or cfg[key] < 1):
            raise TTLError(f"{key}={cfg[key]!r}: expected a positive integer or null")
    if cfg.num_proc is None:
        cfg.num_proc = os.cpu_count() or 1
    if not isinstance(cfg.num_proc, int) or cfg.num_proc < 1:
        raise TTLError(f"num_proc={cfg.num_proc!r}: expected a positive integer or null")
    return cfg


def main(argv: list[str] | None = None) -> int:
    """Command line: key=value arguments (see DEFAULTS)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cfg = load_config(args)
        start = time.perf_counter()
        manifest = prepare(cfg)
        seconds = time.perf_counter() - start
        for name, split in manifest.splits.items():
            if split.empty_documents:
                print(f"ttl.data.prepare: warning: skipped {split.empty_documents:,} empty documents "
                      f"in the {name} split", file=sys.stderr)
        print("\n".join(summary(manifest, cfg.output_dir, seconds)))
        if cfg.push_to_hub:
            print(f"pushed to {push_shards(Path(cfg.output_dir), cfg.push_to_hub, cfg.private)}")
    except TTLError as error:
        print(f"ttl.data.prepare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
