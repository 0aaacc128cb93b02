"""Prepared shards on first use: `data.format=auto` with raw text at `data.path`.

The first run prepares `data.prepared_dir/<name>-<key>/` (`ttl.data.shardset`) and later runs
reuse it; the key fingerprints everything the rows depend on, so a change prepares a new set.
One process prepares under a file lock while the others wait (docs/data.md).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import fields
from pathlib import Path

from ttl.data.config import DataSettings, PrepareConfig, SplitSettings
from ttl.data.fingerprint import digest, source_fingerprint, tokenizer_fingerprint
from ttl.data.manifest import MANIFEST
from ttl.data.shardset import build_shard_set
from ttl.data.sources import train_and_validation
from ttl.rundir import FileLock


def _slug(path: str) -> str:
    name = Path(path.rstrip("/")).name or "corpus"
    if "/" in path and not Path(path).expanduser().exists():
        name = path.replace("/", "--")  # a Hub id: owner--name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:60]


def prepared_shards(settings: DataSettings, tokenizer) -> Path:
    """The shard set for the raw text at `data.path`, prepared into the cache if missing."""
    train, validation = train_and_validation(settings.path, settings)
    # What the rows depend on (the shard layout is `ttl.data.prepare`'s default).
    key = digest([source_fingerprint(train), source_fingerprint(validation), settings.text_column,
                  tokenizer_fingerprint(tokenizer), settings.seq_len, settings.packing or "ttl",
                  PrepareConfig.rows_per_group, PrepareConfig.groups_per_shard])
    cache = Path(os.environ.get("TTL_CACHE_DIR", Path.home() / ".cache" / "ttl")) / "shards"
    cache = Path(settings.prepared_dir).expanduser() if settings.prepared_dir else cache
    out = cache / f"{_slug(settings.path)}-{key}"
    if (out / MANIFEST).is_file():
        return out
    lock = FileLock(out.with_name(out.name + ".lock"),
                    waiting=f"waiting for another process (pid {{pid}}) preparing {out} ...",
                    unwritable="data cache {dir} is not writable ({why}); set data.prepared_dir "
                               "(or TTL_CACHE_DIR) to a writable place")
    with lock:
        if (out / MANIFEST).is_file():  # another process finished it while we waited
            return out
        print(f"preparing {settings.path} into {out} (first use; later runs reuse it)", flush=True)
        shared = {f.name: getattr(settings, f.name) for f in fields(SplitSettings)}
        cfg = PrepareConfig(**shared, data_path=settings.path, output_dir=str(out),
                            tokenizer=str(getattr(tokenizer, "name_or_path", "")),
                            packing=settings.packing or "ttl", num_proc=settings.prepare_num_proc)
        cfg.validate()
        start = time.perf_counter()
        manifest = build_shard_set(cfg, out, tokenizer, train, validation)
        tokens = sum(s.tokens for s in manifest.splits.values())
        print(f"prepared {tokens:,} tokens in {time.perf_counter() - start:.0f} s: {out}", flush=True)
    return out
