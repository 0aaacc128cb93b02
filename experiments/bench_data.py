"""Data pipeline benchmarks on pt-corpus-mini: prepare throughput, delivery rates, peak memory.

Figures, each the median of `--repeats` runs, every run in a fresh subprocess (timed inside
it, after imports), the two sides of a comparison alternating:

1. **prepare throughput** (tokens/s, `--num-proc` processes): `ttl.data.prepare` against the
   original TeenyTinyLlama approach (its `Utilities/tokenize-dataset.py`, re-implemented:
   `datasets.load_dataset` + `Dataset.map` of the tokenizer call + `Dataset.map` of a
   group-texts function that concatenates and cuts 2048-token blocks, then parquet).
   Tokens/s counts the same corpus tokens (documents with <s>) for both sides.
2. **delivery rate** (tokens/s) of `TTLDataModule` on shards with 1 loader worker, micro-batches of
   `--micro` x 2048 (with and without document masking), after the first batch. (Until house
   round 3 it also timed the raw-text stream, `data.format=raw`, removed then; its recorded
   figure stays in experiments/README.md.)
3. **peak resident memory** (max RSS, from `getrusage`) of prepare and of one epoch of
   delivery, on 10% and on 100% of the corpus.

    python experiments/bench_data.py --tokenizer tokenizers/pt-32k [--repeats 3]

Without `--tokenizer` a 32k tokenizer is trained first (about a minute).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEQ_LEN = 2048


# ---------------------------------------------------------------- children (one job each)

def child_prepare(data: str, tokenizer: str, out: str, num_proc: int, rows_per_group: int = 1024) -> dict:
    """ttl.data.prepare on `data`; returns seconds and corpus tokens."""
    from ttl.data.config import PrepareConfig
    from ttl.data.shardset import prepare

    start = time.perf_counter()
    manifest = prepare(PrepareConfig(
        data_path=data, tokenizer=tokenizer, output_dir=out, seq_len=SEQ_LEN,
        num_proc=num_proc, rows_per_group=rows_per_group))
    seconds = time.perf_counter() - start
    tokens = sum(s.tokens + s.dropped_tokens for s in manifest.splits.values())
    return {"seconds": seconds, "tokens": tokens}


def child_baseline(data: str, tokenizer: str, out: str, num_proc: int) -> dict:
    """The original approach: datasets.map(tokenize) + datasets.map(group_texts) + parquet."""
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(tokenizer)
    files = {split: sorted(glob.glob(f"{data}/{split}-*.parquet")) for split in ("train", "validation")}
    raw = datasets.load_dataset("parquet", data_files=files, cache_dir=f"{out}/cache")
    columns = raw["train"].column_names

    def tokenize(batch):
        return tok(batch["text"])  # the tokenizer adds <s>, as TeenyTinyLlama's did

    def group_texts(batch):
        # Concatenate every column of the batch, drop the last token (the original did), cut
        # into blocks of SEQ_LEN; labels are a copy of the input ids.
        joined = {k: [t for example in batch[k] for t in example][:-1] for k in batch}
        total = len(joined["input_ids"]) // SEQ_LEN * SEQ_LEN
        blocks = {k: [v[i:i + SEQ_LEN] for i in range(0, total, SEQ_LEN)] for k, v in joined.items()}
        blocks["labels"] = list(blocks["input_ids"])
        return blocks

    tokenized = raw.map(tokenize, batched=True, remove_columns=columns, num_proc=num_proc)
    if "token_type_ids" in tokenized["train"].column_names:
        tokenized = tokenized.remove_columns("token_type_ids")
    grouped = tokenized.map(group_texts, batched=True, num_proc=num_proc)
    for split, dataset in grouped.items():
        dataset.to_parquet(f"{out}/{split}.parquet")
    return {"seconds": time.perf_counter() - start}


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def child_deliver(path: str, tokenizer: str, micro: int, batches: int | None,
                  masking: bool = False, window: int = 8) -> dict:
    """Iterate a DataModule's training loader over the shards at `path` with 1 worker (`batches`
    None: one epoch); tokens/s after the first batch."""
    from ttl.data.datamodule import DataSettings, TTLDataModule

    settings = DataSettings(path=path, seq_len=SEQ_LEN, format="shards", num_workers=1,
                            document_masking=masking, max_val_blocks=8, shuffle_window=window)
    datamodule = TTLDataModule(settings, _tokenizer(tokenizer), micro)
    datamodule.setup("fit")
    if batches is None:  # one full epoch
        batches = datamodule.train_dataset.batches_per_epoch()
    iterator = iter(datamodule.train_dataloader())
    next(iterator)
    start, tokens = time.perf_counter(), 0
    for _ in range(batches):
        tokens += next(iterator)["input_ids"].numel()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": tokens, "rate": tokens / seconds}


CHILDREN = {"prepare": child_prepare, "baseline": child_baseline, "deliver": child_deliver}


def run_child(job: str, **kwargs) -> dict:
    """Run one job in a fresh Python process; returns its result, peak RSS (MiB) and CPU seconds."""
    result = subprocess.run([sys.executable, __file__, "--child", job, json.dumps(kwargs)],
                            capture_output=True, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if result.returncode != 0:
        raise RuntimeError(f"child {job} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child_main(job: str, kwargs: str) -> None:
    out = CHILDREN[job](**json.loads(kwargs))
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(json.dumps({**out, "rss_mib": own.ru_maxrss / 1024, "child_rss_mib": children.ru_maxrss / 1024,
                      "cpu_s": cpu}))


# ---------------------------------------------------------------- the benchmark


def subset(data: Path, fraction: float, out: Path) -> Path:
    """The first `fraction` of the documents of every train file; validation kept whole."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(data.glob("*.parquet")):
        table = pq.read_table(path)
        if path.name.startswith("train-"):
            table = table.slice(0, max(1, round(table.num_rows * fraction)))
        pq.write_table(table, out / path.name)
    return out


def machine() -> str:
    """CPU model, cores, memory and library versions, for the record."""
    import datasets
    import pyarrow
    import tokenizers
    import torch

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
            f"torch {torch.__version__}, datasets {datasets.__version__}, "
            f"tokenizers {tokenizers.__version__}, pyarrow {pyarrow.__version__}")


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def main() -> None:
    """Run every benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pt-corpus-mini"))
    parser.add_argument("--tokenizer", default=None, help="32k tokenizer directory (trained if absent)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--batches", type=int, default=1500, help="micro-batches timed from shards")
    parser.add_argument("--rss-rows-per-group", type=int, default=64)
    parser.add_argument("--rss-window", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ttl-bench-data-"))
    try:
        tokenizer = args.tokenizer
        if tokenizer is None:
            from ttl.tokenizer import train_from_path

            tokenizer = str(work / "pt-32k")
            train_from_path(args.data, tokenizer, vocab_size=32000)
        print(f"machine: {machine()}")
        print(f"data: {args.data}; tokenizer: {tokenizer}; repeats: {args.repeats}")

        # 1. prepare throughput, alternating ours and the baseline.
        ours, base, tokens = [], [], 0
        for run in range(args.repeats):
            shards = work / f"shards-{run}"
            mine = run_child("prepare", data=args.data, tokenizer=tokenizer, out=str(shards),
                             num_proc=args.num_proc)
            theirs = run_child("baseline", data=args.data, tokenizer=tokenizer, out=str(work / f"base-{run}"),
                               num_proc=args.num_proc)
            ours.append(mine)
            base.append(theirs)
            tokens = mine["tokens"]
            shutil.rmtree(work / f"base-{run}", ignore_errors=True)
            if run:
                shutil.rmtree(shards, ignore_errors=True)
            print(f"  prepare run {run}: ttl {mine['seconds']:.1f} s ({mine['cpu_s']:.1f} CPU s), "
                  f"baseline {theirs['seconds']:.1f} s ({theirs['cpu_s']:.1f} CPU s)")
        rate_ours = tokens / median([r["seconds"] for r in ours])
        rate_base = tokens / median([r["seconds"] for r in base])
        cpu_ratio = median([r["cpu_s"] for r in base]) / median([r["cpu_s"] for r in ours])
        print(f"prepare ({tokens:,} tokens, num_proc={args.num_proc}): ttl {rate_ours:,.0f} tokens/s, "
              f"TeenyTinyLlama approach {rate_base:,.0f} tokens/s, ratio {rate_ours / rate_base:.2f} "
              f"(CPU seconds, imports included: ratio {cpu_ratio:.2f})")

        # 2. delivery rates.
        shards = str(work / "shards-0")
        for masking in (False, True):
            rates = [run_child("deliver", path=shards, tokenizer=tokenizer, micro=args.micro,
                               batches=args.batches, masking=masking)["rate"] for _ in range(args.repeats)]
            print(f"delivery from shards, 1 worker, micro-batch {args.micro} x {SEQ_LEN}, "
                  f"document_masking={masking}: {median(rates):,.0f} tokens/s "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")

        # 3. peak memory, 10% against 100% of the corpus. Row groups and shuffle windows are
        # scaled down so that even 10% of this small corpus spans more than one window (the
        # memory bound); the defaults' window (8 x 1024 rows) exceeds the whole corpus.
        tenth = subset(Path(args.data), 0.1, work / "tenth")
        peaks: dict[str, dict[str, dict]] = {"prepare": {}, "deliver": {}}
        for label, data in (("10%", str(tenth)), ("100%", args.data)):
            out = str(work / f"rss-{label.rstrip('%')}")
            peaks["prepare"][label] = run_child("prepare", data=data, tokenizer=tokenizer, out=out,
                                                num_proc=args.num_proc,
                                                rows_per_group=args.rss_rows_per_group)
            peaks["deliver"][label] = run_child("deliver", path=out, tokenizer=tokenizer, micro=args.micro,
                                                batches=None, window=args.rss_window)
        print(f"peak RSS with {args.rss_rows_per_group}-row groups, shuffle windows of {args.rss_window} "
              "groups, one epoch of delivery:")
        for job, by_size in peaks.items():
            small, full = by_size["10%"], by_size["100%"]
            print(f"  {job}: main process {small['rss_mib']:.0f} MiB (10%) vs {full['rss_mib']:.0f} MiB "
                  f"(100%), ratio {full['rss_mib'] / small['rss_mib']:.3f}; largest child process "
                  f"{small['child_rss_mib']:.0f} vs {full['child_rss_mib']:.0f} MiB, ratio "
                  f"{full['child_rss_mib'] / small['child_rss_mib']:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], sys.argv[3])
    else:
        main()
