"""Build a prepared shard set from raw text, one source file (a "job") at a time, resumably.

Each job's documents go to the training or validation side (by split or held-out rule), are
tokenized on a pool of processes in order, packed, and written as shards of their own
(`train/shard-JJJJJ-NNNNN.parquet`); a finished job is recorded in `progress.json`, where an
interrupted build resumes. Packing starts afresh in each file (dropping under one row per file
and side), so the set is identical in one go or resumed, for any number of processes. The set
is built in `OUT.partial`, renamed to OUT once its manifest is written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ttl.data.config import PrepareConfig
from ttl.data.fingerprint import digest, file_fingerprint, source_fingerprint, tokenizer_fingerprint
from ttl.data.manifest import Manifest, SplitInfo, write_manifest
from ttl.data.packing import RowPacker, encode_documents, is_empty
from ttl.data.shards import ShardWriter, token_dtype
from ttl.data.sources import TextSource, read_unit, train_and_validation
from ttl.errors import TTLError
from ttl.rundir import write_json

PROGRESS = "progress.json"
SIDES = ("train", "validation")


@dataclass(frozen=True)
class Job:
    """One source file and where its documents go (`side` None: by the held-out rule)."""

    index: int
    split: str
    unit: int
    file: str
    side: str | None


def plan_jobs(train: TextSource, validation: TextSource) -> list[Job]:
    """The files to read, in order: the training split's, then a validation split's own."""
    roles = [(train, None)] if validation.holdout else [(train, "train"), (validation, "validation")]
    units = [(split, unit, source.corpus.splits[split][unit], side)
             for source, side in roles for split, unit in source.units]
    return [Job(i, *unit) for i, unit in enumerate(units)]


# The tokenizer and settings of the tokenizing processes: set in the parent before the
# processes are forked, so they inherit them instead of loading the tokenizer again.
_WORKER: dict = {}


def _init_worker() -> None:
    # One thread per process: the processes already use every core.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _ordered_map(func: Callable[[Any], Any], tasks: Iterable[Any], num_proc: int) -> Iterator[Any]:
    """`map(func, tasks)` on `num_proc` forked processes (this one when 1), in input order so that
    the output does not depend on `num_proc`, with at most two tasks per process in flight
    (`Pool.imap` reads its whole input as fast as it can: unbounded memory on a large corpus)."""
    if num_proc <= 1:
        _init_worker()
        yield from map(func, tasks)
        return
    # fork: workers start in milliseconds and inherit the tokenizer the parent loaded.
    pool = multiprocessing.get_context("fork").Pool(num_proc, _init_worker)
    try:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(func, (task,)))
            if len(pending) >= 2 * num_proc:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


def _encode(task: tuple) -> tuple:
    job, side, texts = task
    if texts is None:  # a job's end marker passes through in order
        return task
    return job, side, encode_documents(_WORKER["tokenizer"], texts, _WORKER["packing"], _WORKER["dtype"])


class _JobWriter:
    """Packers, shard writers and counts of the job being written."""

    def __init__(self, root: Path, job: Job, cfg, dtype: np.dtype) -> None:
        self.root, self.job, self.cfg, self.dtype = root, job, cfg, dtype
        self.packers: dict[str, RowPacker] = {}
        self.writers: dict[str, ShardWriter] = {}

    def add(self, side: str, flat: np.ndarray, lengths: np.ndarray) -> None:
        if side not in self.packers:
            self.packers[side] = RowPacker(self.cfg.seq_len, self.dtype)
            self.writers[side] = ShardWriter(self.root, side, self.dtype, self.cfg.rows_per_group,
                                             self.cfg.groups_per_shard, prefix=f"shard-{self.job.index:05d}")
        self.writers[side].write(self.packers[side].add(flat, lengths))

    def close(self, empty: dict[str, int]) -> dict[str, SplitInfo]:
        infos = {side: self.packers[side].stats if side in self.packers else SplitInfo() for side in SIDES}
        for side, info in infos.items():
            info.empty_documents = empty.get(side, 0)
            if side in self.writers:
                info.shards = self.writers[side].close()
        return infos


def _read_progress(partial: Path, key: str, jobs: list[Job], fingerprints: dict[int, object]) -> dict:
    """Jobs of an interrupted build that can be kept; everything else in `partial` is removed."""
    try:
        state = json.loads((partial / PROGRESS).read_text())
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("key") != key:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        return {}
    done = {}
    for job in jobs:
        record = state.get("jobs", {}).get(str(job.index))
        if not record or record.get("fingerprint") != fingerprints[job.index]:
            continue
        sides = {side: SplitInfo.from_dict(info) for side, info in record["sides"].items()}
        if all((partial / s.path).is_file() and (partial / s.path).stat().st_size == s.bytes
               for info in sides.values() for s in info.shards):
            done[job.index] = {**record, "sides": sides}
    kept = {s.path for record in done.values() for info in record["sides"].values() for s in info.shards}
    for path in list(partial.rglob("*.parquet")):
        if path.relative_to(partial).as_posix() not in kept:
            path.unlink()
    return done


def _write_progress(partial: Path, key: str, done: dict) -> None:
    jobs = {str(i): {**r, "sides": {s: asdict(info) for s, info in r["sides"].items()}}
            for i, r in sorted(done.items())}
    write_json(partial / PROGRESS, {"key": key, "jobs": jobs})


def _merge(records: list[dict], side: str) -> SplitInfo:
    total = SplitInfo()
    for record in records:
        info = record["sides"][side]
        for name in ("rows", "tokens", "documents", "empty_documents", "long_documents", "dropped_tokens"):
            setattr(total, name, getattr(total, name) + getattr(info, name))
        total.shards.extend(info.shards)
    return total


def build_shard_set(cfg: PrepareConfig, out: Path, tokenizer, train: TextSource,
                    validation: TextSource) -> Manifest:
    """Prepare `train`/`validation` into the shard set `out` (resuming `out.partial`)."""
    dtype = token_dtype(len(tokenizer))
    jobs = plan_jobs(train, validation)
    hub = train.corpus.hub
    fingerprints = {job.index: file_fingerprint(job.file, hub) for job in jobs}
    rule = validation.holdout
    key = digest([tokenizer_fingerprint(tokenizer), cfg.seq_len, cfg.packing, cfg.text_column,
                  rule.describe() if rule else None, cfg.rows_per_group, cfg.groups_per_shard,
                  cfg.max_documents, [(j.split, j.unit, j.side) for j in jobs]])
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    done = _read_progress(partial, key, jobs, fingerprints)
    if done:
        print(f"resuming {partial}: {len(done)} of {len(jobs)} files already prepared", flush=True)
    known = [train.corpus.documents.get(j.split) for j in jobs]
    total = sum({j.split: n for j, n in zip(jobs, known, strict=True)}.values()) if all(known) else None
    limit = cfg.max_documents
    read_before = sum(r["read"] for r in done.values())
    counts: dict[int, dict] = {}

    def tasks() -> Iterator[tuple]:
        read = read_before
        for job in jobs:
            if job.index in done:
                continue
            count = counts[job.index] = {"read": 0, "empty": {side: 0 for side in SIDES}}
            for texts in read_unit(train.corpus, job.split, job.unit, cfg.text_column, cfg.batch_size):
                if limit is not None:
                    texts = texts[: max(0, limit - read)]
                if not texts:
                    break
                read += len(texts)
                count["read"] += len(texts)
                bar.update(len(texts))
                sides: dict[str, list[str]] = {side: [] for side in SIDES}
                for text in texts:
                    side = job.side or ("validation" if rule.held_out(text) else "train")
                    if is_empty(text):
                        count["empty"][side] += 1
                    else:
                        sides[side].append(text)
                for side, kept in sides.items():
                    if kept:
                        yield job.index, side, kept
            yield job.index, None, None

    _WORKER.update(tokenizer=tokenizer, packing=cfg.packing, dtype=dtype)
    writer: _JobWriter | None = None
    from tqdm.auto import tqdm

    # A bar on a terminal only: in a batch job's log it is noise; the per-file lines remain.
    bar = tqdm(total=total, initial=read_before, unit="doc", unit_scale=True, desc="prepare",
               file=sys.stderr, disable=not sys.stderr.isatty(), dynamic_ncols=True)
    results = _ordered_map(_encode, tasks(), cfg.num_proc or os.cpu_count() or 1)
    try:
        for index, side, encoded in results:
            if writer is None or writer.job.index != index:
                writer = _JobWriter(partial, jobs[index], cfg, dtype)
            if side is not None:
                writer.add(side, *encoded)
                continue
            sides = writer.close(counts[index]["empty"])
            done[index] = {"fingerprint": fingerprints[index], "read": counts[index]["read"],
                           "sides": sides}
            _write_progress(partial, key, done)
            writer = None
            rows = ", ".join(f"{s.rows:,} {side} rows" for side, s in sides.items() if s.rows)
            print(f"prepared file {len(done)}/{len(jobs)}: {jobs[index].file} "
                  f"({counts[index]['read']:,} documents{', ' + rows if rows else ''})", flush=True)
    finally:
        results.close()
        bar.close()
        _WORKER.clear()
    records = [done[job.index] for job in jobs]
    splits = {side: _merge(records, side) for side in SIDES}
    for side, info in splits.items():
        if info.rows == 0:
            source = validation if side == "validation" else train
            raise TTLError(
                f"data_path={cfg.data_path}: the {side} split ({source.describe()}) holds "
                f"{info.dropped_tokens} tokens, fewer than one row of seq_len={cfg.seq_len}"
            )
    holdout = None
    if rule is not None:
        holdout = {**rule.describe(), "held_out_documents": splits["validation"].documents,
                   "held_out_empty_documents": splits["validation"].empty_documents,
                   "training_documents": splits["train"].documents}
    manifest = Manifest(
        seq_len=cfg.seq_len, packing=cfg.packing, dtype=dtype.name, vocab_size=len(tokenizer),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        tokenizer_name=str(getattr(tokenizer, "name_or_path", "")),
        source_fingerprint=digest([source_fingerprint(train), source_fingerprint(validation)]),
        source=str(cfg.data_path), text_column=cfg.text_column, rows_per_group=cfg.rows_per_group,
        splits=splits, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source_splits={"train": ", ".join(train.splits),
                       "validation": (f"{', '.join(train.splits)} (held out by content hash)" if rule
                                      else ", ".join(validation.splits))},
        holdout=holdout,
    )
    write_manifest(manifest, partial)
    (partial / PROGRESS).unlink()
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    return manifest


def prepare(cfg: PrepareConfig) -> Manifest:
    """Build the shard set `cfg` describes; returns its manifest. Everything the user can get
    wrong (keys, paths, splits, text column, damaged parquet, tokenizer) fails before any write."""
    from ttl.tokenizer import load_tokenizer

    cfg.validate()
    out = Path(cfg.output_dir).expanduser()
    if out.exists() and not cfg.overwrite:
        raise TTLError(f"output_dir={out} already exists; choose another or pass overwrite=true")
    tokenizer = load_tokenizer(cfg.tokenizer)
    train, validation = train_and_validation(str(cfg.data_path), cfg)
    return build_shard_set(cfg, out, tokenizer, train, validation)


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
