"""Prepared shards on first use: `data.format=auto` with raw text at `data.path`.

The first run tokenizes, packs and writes the corpus into
`data.prepared_dir/<name>-<key>/` (with `ttl.data.shardset`: resumable file by file, a
manifest written last), and every later run, rank and node that finds the same key trains
from it. The key is a fingerprint of the source (its files, or its Hub revision), its
splits and held-out rule, the tokenizer, seq_len, packing and the shard layout: change any
of them and a new set is prepared; the old one stays until you delete it.

Several processes (the ranks of a torchrun or srun job, several jobs) may ask at once: one
prepares under a file lock, the others wait for it and then read its result. Nodes that do
not share `data.prepared_dir` each prepare their own copy (the same rows); to prepare once
for a cluster, run `python -m ttl.data.prepare` into a shared directory and train with
`data.path=` that directory.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from ttl.data.config import DataSettings, PrepareConfig
from ttl.data.fingerprint import digest, source_fingerprint, tokenizer_fingerprint
from ttl.data.manifest import MANIFEST
from ttl.data.shardset import build_shard_set
from ttl.data.sources import TextSource, open_corpus, resolve_source
from ttl.rundir import FileLock

log = logging.getLogger(__name__)

# The shard layout of sets prepared on first use (`ttl.data.prepare`'s defaults).
ROWS_PER_GROUP = PrepareConfig.rows_per_group
GROUPS_PER_SHARD = PrepareConfig.groups_per_shard


def sources(settings: DataSettings) -> tuple[TextSource, TextSource]:
    """The training and validation sources of `data.path` (opened once, checked early)."""
    s = settings
    corpus = open_corpus(s.path)
    return tuple(resolve_source(s.path, split, s.text_column, s.train_split, s.val_split,
                                s.val_fraction, s.val_documents, corpus=corpus)
                 for split in (s.train_split, s.val_split))


def cache_key(settings: DataSettings, tokenizer, train: TextSource, validation: TextSource) -> str:
    """What a prepared set depends on; equal keys mean equal rows."""
    return digest([source_fingerprint(train), source_fingerprint(validation), settings.text_column,
                   tokenizer_fingerprint(tokenizer), settings.seq_len, settings.packing or "ttl",
                   ROWS_PER_GROUP, GROUPS_PER_SHARD])


def _slug(path: str) -> str:
    name = Path(path.rstrip("/")).name or "corpus"
    if "/" in path and not Path(path).expanduser().exists():
        name = path.replace("/", "--")  # a Hub id: owner--name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:60]


def prepared_dir(settings: DataSettings) -> Path:
    """`data.prepared_dir`, or ~/.cache/ttl/shards (TTL_CACHE_DIR/shards when that is set)."""
    if settings.prepared_dir:
        return Path(settings.prepared_dir).expanduser()
    return Path(os.environ.get("TTL_CACHE_DIR", Path.home() / ".cache" / "ttl")) / "shards"


def prepared_shards(settings: DataSettings, tokenizer) -> Path:
    """The shard set for the raw text at `data.path`, prepared into the cache if missing."""
    train, validation = sources(settings)
    key = cache_key(settings, tokenizer, train, validation)
    out = prepared_dir(settings) / f"{_slug(settings.path)}-{key}"
    if (out / MANIFEST).is_file():
        return out
    lock = FileLock(out.with_name(out.name + ".lock"), wait=True,
                    waiting=f"waiting for another process (pid {{pid}}) preparing {out} ...",
                    unwritable="data cache {dir} is not writable ({why}); set data.prepared_dir "
                               "(or TTL_CACHE_DIR) to a writable place")
    with lock:
        if (out / MANIFEST).is_file():  # another process finished it while we waited
            return out
        print(f"preparing {settings.path} into {out} (first use; later runs reuse it)", flush=True)
        cfg = PrepareConfig(
            data_path=settings.path, tokenizer=str(getattr(tokenizer, "name_or_path", "")),
            output_dir=str(out), seq_len=settings.seq_len, packing=settings.packing or "ttl",
            text_column=settings.text_column, train_split=settings.train_split,
            val_split=settings.val_split, val_fraction=settings.val_fraction,
            val_documents=settings.val_documents, num_proc=settings.prepare_num_proc,
            rows_per_group=ROWS_PER_GROUP, groups_per_shard=GROUPS_PER_SHARD)
        cfg.validate()
        start = time.perf_counter()
        manifest = build_shard_set(cfg, out, tokenizer, train, validation,
                                   say=lambda line: print(line, flush=True))
        tokens = sum(s.tokens for s in manifest.splits.values())
        print(f"prepared {tokens:,} tokens in {time.perf_counter() - start:.0f} s: {out}", flush=True)
    return out
