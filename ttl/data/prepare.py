"""`python -m ttl.data.prepare data_path=... tokenizer=... output_dir=... [key=value ...]`

Raw text (local parquet / jsonl / txt, or a Hub dataset id) + a tokenizer -> packed token
shards for `data.format=shards`:

    OUTPUT_DIR/train/shard-00000.parquet ...       rows of seq_len tokens + document starts
    OUTPUT_DIR/validation/shard-00000.parquet ...
    OUTPUT_DIR/manifest.json                       tokenizer and source fingerprints, counts

Documents are read as a stream, tokenized on `num_proc` processes in order (the output does
not depend on `num_proc`), packed in the chosen convention and written row group by row
group, so memory stays flat however large the corpus. Empty documents are skipped and
counted; documents longer than a row continue in the next rows. The set is written to
`OUTPUT_DIR.partial` and renamed when complete; `push_to_hub=owner/name` then uploads it.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from ttl.data.fingerprint import digest, source_fingerprint, tokenizer_fingerprint
from ttl.data.hub import push_shards
from ttl.data.manifest import Manifest, SplitInfo, write_manifest
from ttl.data.packing import RowPacker, check_packing, encode_documents, is_empty
from ttl.data.parallel import OrderedPool
from ttl.data.shards import ShardWriter, token_dtype
from ttl.data.sources import TextSource, iter_documents, resolve_source
from ttl.errors import TTLError
from ttl.tokenizer import load_tokenizer

DEFAULTS = {
    "data_path": "???",
    "tokenizer": "???",
    "output_dir": "???",
    "seq_len": 2048,
    "packing": "ttl",
    "text_column": "text",
    "train_split": "train",
    "val_split": "validation",
    "val_fraction": 0.01,
    # Tokenizing processes; null = every core of this machine.
    "num_proc": None,
    # Documents per tokenization task.
    "batch_size": 512,
    # Rows per parquet row group (the unit of reading and shuffling) and row groups per file.
    "rows_per_group": 1024,
    "groups_per_shard": 64,
    # Stop after this many training documents (null = all): quick trials.
    "max_documents": None,
    "overwrite": False,
    "push_to_hub": None,
    "private": True,
}

# The tokenizer and settings of the tokenizing processes: set in the parent before the
# processes are forked, so they inherit them instead of loading the tokenizer again.
_WORKER: dict = {}


def _init_worker() -> None:
    # One thread per process: the processes already use every core.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return encode_documents(_WORKER["tokenizer"], texts, _WORKER["packing"], _WORKER["dtype"])


def _document_batches(source: TextSource, batch_size: int, info: SplitInfo,
                      limit: int | None) -> Iterator[list[str]]:
    """Non-empty documents in batches; empty ones are counted in `info`."""
    documents = iter_documents(source)
    if limit is not None:
        documents = islice(documents, limit)
    batch: list[str] = []
    for text in documents:
        if is_empty(text):
            info.empty_documents += 1
            continue
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare_split(pool: OrderedPool, source: TextSource, out: Path, split: str, cfg, dtype: np.dtype,
                  limit: int | None = None) -> SplitInfo:
    """Tokenize (on `pool`), pack and write one split; returns its counts and shards."""
    info = SplitInfo()
    packer = RowPacker(cfg.seq_len, dtype)
    writer = ShardWriter(out, split, dtype, cfg.rows_per_group, cfg.groups_per_shard)
    results = pool.map(_encode, _document_batches(source, cfg.batch_size, info, limit))
    for flat, lengths in results:
        writer.write(packer.add(flat, lengths))
    info.shards = writer.close()
    stats = packer.stats
    info.rows, info.documents, info.long_documents = stats.blocks, stats.documents, stats.long_documents
    info.tokens, info.dropped_tokens = stats.blocks * cfg.seq_len, packer.remainder
    return info


def prepare(cfg) -> Manifest:
    """Build the shard set described by `cfg` (see DEFAULTS); returns its manifest."""
    check_packing(cfg.packing)
    if cfg.seq_len < 2:
        raise TTLError(f"seq_len={cfg.seq_len}: must be at least 2")
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and not cfg.overwrite:
        raise TTLError(f"output_dir={out} already exists; choose another or pass overwrite=true")
    tokenizer = load_tokenizer(cfg.tokenizer)
    dtype = token_dtype(len(tokenizer))
    sources = {
        role: resolve_source(cfg.data_path, name, cfg.text_column, cfg.train_split, cfg.val_split,
                             cfg.val_fraction)
        for role, name in (("train", cfg.train_split), ("validation", cfg.val_split))
    }
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _WORKER.update(tokenizer=tokenizer, packing=cfg.packing, dtype=dtype)
    try:
        with OrderedPool(cfg.num_proc, _init_worker) as pool:
            splits = {
                "validation": prepare_split(pool, sources["validation"], partial, "validation", cfg, dtype),
                "train": prepare_split(pool, sources["train"], partial, "train", cfg, dtype,
                                       cfg.max_documents),
            }
    except BaseException:
        # Leave nothing half-written behind (a bad file, an interrupt).
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        _WORKER.clear()
    for role, info in splits.items():
        if info.rows == 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise TTLError(
                f"data_path={cfg.data_path}: the {role} split ({sources[role].describe()}) holds "
                f"{info.dropped_tokens} tokens, fewer than one row of seq_len={cfg.seq_len}"
            )
    manifest = Manifest(
        seq_len=cfg.seq_len, packing=cfg.packing, dtype=dtype.name, vocab_size=len(tokenizer),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer), tokenizer_name=str(cfg.tokenizer),
        source_fingerprint=digest([source_fingerprint(sources[role]) for role in ("train", "validation")]),
        source=str(cfg.data_path),
        text_column=cfg.text_column, rows_per_group=cfg.rows_per_group, splits=splits,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    write_manifest(manifest, partial)
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return manifest


def summary(manifest: Manifest, out: str, seconds: float) -> list[str]:
    """Lines reporting what was written, for people."""
    lines = [f"prepared {out} ({manifest.dtype}, seq_len {manifest.seq_len}, packing {manifest.packing})"]
    for name, s in manifest.splits.items():
        lines.append(
            f"  {name}: {s.rows:,} rows = {s.tokens:,} tokens in {len(s.shards)} shard(s); "
            f"{s.documents:,} documents ({s.long_documents:,} longer than a row, split across rows); "
            f"{s.dropped_tokens:,} tail tokens dropped"
        )
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
