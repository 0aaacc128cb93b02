"""The real corpus's layout (one `train` split, as on the Hub): order quality, preparation, resume.

Figures (issue 12), on a copy of Pt-Corpus-Instruct's layout:

1. **order quality** of one epoch of the training stream: for every training document, how
   far its position in the stream is from its position in the files, as a fraction
   (mean |stream position / rows - file position / documents|): about 1/3 for a uniform
   shuffle, 0 for file order. Also Spearman's rank correlation of the two positions (0 for a
   uniform shuffle, 1 for file order). For the default path (shards prepared on first use,
   `data=pt_corpus`) and for file order (`data.shuffle=false`).
2. **preparation**: tokens/s on 1 and on 2 processes, the main process's reading rate (files
   read, documents hashed for the held-out rule, no tokenizing), and peak resident memory
   (the whole process tree, sampled every 0.1 s) at 1x and at 20x the corpus (the 20x corpus
   repeats every document 20 times with a small edit). With a projection for
   Pt-Corpus-Instruct (6.2 B tokens, 29.7 GB of text) on 16 cores.
3. **resume cost**: from a new DataModule to its first training batch, for a run stopped
   after 90% of the corpus's tokens, on prepared shards.

Until house round 3 the script also measured raw streaming (`data.format=raw`, removed then);
its recorded figures stay in experiments/README.md and results-corpus.json.

    python experiments/bench_corpus.py --corpus ../shared/data/pt-corpus-instruct-layout \\
        --tokenizer tokenizers/pt-32k [--repeats 3]

Without `--tokenizer` a 32k tokenizer is trained on the corpus first (about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEQ_LEN = 2048
MICRO = 4
KEY_TOKENS = 16
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def settings(corpus: str, prepared_dir: str, **overrides):
    from ttl.data.config import DataSettings

    values = {"path": corpus, "seq_len": SEQ_LEN, "format": "auto", "val_fraction": 0.01,
              "max_val_blocks": 1000, "shuffle_window": 64, "num_workers": 2,
              "prepared_dir": prepared_dir}
    return DataSettings(**{**values, **overrides})


# ---------------------------------------------------------------- 1. order quality

def document_keys(corpus: str, tokenizer) -> tuple[dict[tuple, int], int]:
    """Each document (file order, all of them) keyed by its first KEY_TOKENS token ids."""
    from ttl.data.packing import encode_documents
    from ttl.data.sources import TextSource, open_corpus

    corpus_ = open_corpus(corpus)
    docs = [t for t in TextSource(corpus_, ("train",)).documents() if t.strip()]
    keys: dict[tuple, int] = {}
    seen_twice: set[tuple] = set()
    for start in range(0, len(docs), 512):
        flat, lengths = encode_documents(tokenizer, docs[start:start + 512], "ttl")
        offsets = np.cumsum(lengths) - lengths
        for i, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
            key = tuple(flat[offset + 1: offset + min(length, 1 + KEY_TOKENS)].tolist())
            if key in keys:
                seen_twice.add(key)
            keys[key] = start + i
    for key in seen_twice:
        keys.pop(key)
    return keys, len(docs)


def stream_positions(batches, keys: dict[tuple, int], bos: int) -> tuple[dict[int, int], int]:
    """First stream row of every document found (by the tokens after its <s>), and rows seen."""
    positions: dict[int, int] = {}
    row_index = 0
    for batch in batches:
        for row in batch["input_ids"].numpy():
            for start in np.flatnonzero(row == bos):
                key = tuple(row[start + 1: start + 1 + KEY_TOKENS].tolist())
                doc = keys.get(key)
                if doc is not None and len(key) == KEY_TOKENS and doc not in positions:
                    positions[doc] = row_index
            row_index += 1
    return positions, row_index


BLOCK_ROWS = 256  # 64 optimizer steps of the 160m recipe (4 x 2,048 tokens per step)


def order_figures(positions: dict[int, int], rows: int, documents: int) -> dict:
    """Global displacement and rank correlation, and local mixing: the distinct hundredths of
    the corpus (by file position) whose documents start in each block of BLOCK_ROWS rows."""
    docs = np.fromiter(positions, dtype=np.float64)
    rows_at = np.fromiter(positions.values(), dtype=np.float64)
    displacement = float(np.mean(np.abs(rows_at / rows - docs / documents)))
    rank = lambda a: np.argsort(np.argsort(a, kind="stable"), kind="stable")  # noqa: E731
    spearman = float(np.corrcoef(rank(docs), rank(rows_at))[0, 1])
    block = (rows_at // BLOCK_ROWS).astype(np.int64)
    hundredth = (docs * 100 // documents).astype(np.int64)
    pairs = np.unique(block * 100 + hundredth)
    regions = float(np.mean(np.bincount(pairs // 100)[np.unique(pairs // 100)]))
    return {"displacement": round(displacement, 4), "spearman": round(spearman, 4),
            "regions_per_block": round(regions, 1), "documents_found": len(positions), "rows": rows}


def measure_order(corpus: str, tokenizer, work: Path) -> dict:
    from ttl.data.datamodule import BatchLoader, TTLDataModule

    keys, documents = document_keys(corpus, tokenizer)
    results = {}
    cases = (("prepared (default)", {}, 0), ("prepared, shuffle=false", {"shuffle": False}, 0))
    for name, overrides, workers in cases:
        dm = TTLDataModule(settings(corpus, str(work / "prepared"), **overrides), tokenizer, MICRO)
        dm.setup("fit")
        stream = dm.train_dataset
        stream.epochs = 1
        loader = BatchLoader(stream, batch_size=None, num_workers=workers)
        positions, rows = stream_positions(loader, keys, tokenizer.bos_token_id)
        results[name] = order_figures(positions, rows, documents)
        print(f"order  {name:28s} {results[name]}", flush=True)
    # A uniform shuffle of the same documents over the same rows (as many documents per row).
    rows = results["prepared (default)"]["rows"]
    rng = np.random.default_rng(0)
    uniform = {d: int(r) for d, r in zip(range(documents), rng.integers(0, rows, documents), strict=True)}
    results["uniform shuffle (reference)"] = order_figures(uniform, rows, documents)
    print(f"order  {'uniform shuffle (reference)':28s} {results['uniform shuffle (reference)']}")
    return results


# ---------------------------------------------------------------- 2. preparation

def tree_rss(process) -> int:
    import psutil

    try:
        members = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in members)
    except psutil.Error:
        return 0


def run_prepare(corpus: str, tokenizer: str, out: Path, num_proc: int) -> dict:
    """`python -m ttl.data.prepare` in a subprocess: wall time, tokens, peak tree and main RSS."""
    import psutil

    command = [sys.executable, "-m", "ttl.data.prepare", f"data_path={corpus}", f"tokenizer={tokenizer}",
               f"output_dir={out}", f"seq_len={SEQ_LEN}", f"num_proc={num_proc}", "overwrite=true"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **ENV}, stdout=subprocess.PIPE, text=True)
    handle = psutil.Process(process.pid)
    peak_tree = peak_main = 0
    while process.poll() is None:
        peak_tree = max(peak_tree, tree_rss(handle))
        try:
            peak_main = max(peak_main, handle.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - start
    output = process.stdout.read()
    if process.returncode:
        raise SystemExit(f"prepare failed:\n{output}")
    line = next(x for x in output.splitlines() if "tokens/s" in x)
    tokens, seconds = int(line.split()[0].replace(",", "")), float(line.split(" in ")[1].split(" s")[0])
    return {"tokens": tokens, "seconds": round(seconds, 2), "wall": round(wall, 2),
            "tokens_per_s": round(tokens / seconds), "peak_tree_mib": round(peak_tree / 2**20),
            "peak_main_mib": round(peak_main / 2**20)}


def reading_rate(corpus: str) -> dict:
    """What the preparing main process does besides packing: read every file, hash every document."""
    from ttl.data.holdout import HoldoutRule
    from ttl.data.sources import open_corpus, read_unit

    corpus_ = open_corpus(corpus)
    rule = HoldoutRule(0.01)
    start = time.perf_counter()
    chars = documents = 0
    held = 0
    for unit in range(len(corpus_.splits["train"])):
        for texts in read_unit(corpus_, "train", unit, "text", 512):
            documents += len(texts)
            for text in texts:
                held += rule.held_out(text)
                chars += len(text.encode())
    seconds = time.perf_counter() - start
    return {"bytes_per_s": round(chars / seconds), "documents_per_s": round(documents / seconds),
            "bytes": chars}


def make_bigger(corpus: str, target: Path, times: int) -> Path:
    """The corpus `times` over, every copy of a document edited a little (same layout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (target / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(corpus) / "README.md", target / "README.md")
    files = sorted((Path(corpus) / "data").glob("train-*.parquet"))
    total = len(files) * times
    index = 0
    for copy in range(times):
        for path in files:
            table = pq.read_table(path)
            texts = [f"Cópia {copy}: {t}" for t in table.column("text").to_pylist()]
            table = table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))
            pq.write_table(table, target / "data" / f"train-{index:05d}-of-{total:05d}.parquet")
            index += 1
    return target


def measure_prepare(corpus: str, tokenizer: str, work: Path, repeats: int) -> dict:
    results: dict = {"reading": reading_rate(corpus)}
    print(f"prepare reading rate: {results['reading']}", flush=True)
    for num_proc in (1, 2):
        runs = [run_prepare(corpus, tokenizer, work / f"p{num_proc}", num_proc) for _ in range(repeats)]
        median = sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2]
        results[f"1x, num_proc={num_proc}"] = {**median, "runs": [r["tokens_per_s"] for r in runs]}
        print(f"prepare 1x num_proc={num_proc}: {results[f'1x, num_proc={num_proc}']}", flush=True)
    big = make_bigger(corpus, work / "corpus-20x", 20)
    results["20x, num_proc=2"] = run_prepare(str(big), tokenizer, work / "p20", 2)
    print(f"prepare 20x num_proc=2: {results['20x, num_proc=2']}", flush=True)
    shutil.rmtree(big)
    one, two = results["1x, num_proc=1"], results["1x, num_proc=2"]
    tokens_per_byte = one["tokens"] / results["reading"]["bytes"]
    per_core = two["tokens_per_s"] / 2
    reader_limit = results["reading"]["bytes_per_s"] * tokens_per_byte
    rate16 = min(16 * per_core, reader_limit)
    results["projection"] = {
        "tokens_per_core_s": round(per_core), "reader_limit_tokens_per_s": round(reader_limit),
        "pt_corpus_instruct_tokens": 6.2e9, "hours_on_16_cores": round(6.2e9 / rate16 / 3600, 2),
        "bound": "reader" if reader_limit < 16 * per_core else "tokenizing",
    }
    print(f"projection: {results['projection']}")
    return results


# ---------------------------------------------------------------- 3. resume cost

def time_to_first_batch(corpus: str, tokenizer, work: Path, fraction: float) -> dict:
    """Seconds from a new DataModule to its first batch, resuming after `fraction` of an epoch."""
    from ttl.data.datamodule import TTLDataModule

    def datamodule() -> TTLDataModule:
        return TTLDataModule(settings(corpus, str(work / "prepared"), num_workers=0), tokenizer, MICRO)

    probe = datamodule()
    probe.setup("fit")
    total = probe.train_dataset.batches_per_epoch()
    done = int(total * fraction)
    state = probe.state_at(done, 1)  # the state a 1-device run's checkpoint holds after `done` batches
    start = time.perf_counter()
    resumed = datamodule()
    resumed.setup("fit")
    resumed.load_state_dict(state)
    next(iter(resumed.train_dataloader()))
    return {"seconds": time.perf_counter() - start, "skipped_batches": done, "batches_per_pass": total}


def measure_resume(corpus: str, tokenizer, work: Path, repeats: int) -> dict:
    label = "prepared shards"
    runs = [time_to_first_batch(corpus, tokenizer, work, 0.9) for _ in range(repeats)]
    results = {label: {"median_s": round(statistics.median(r["seconds"] for r in runs), 2),
                       "runs_s": [round(r["seconds"], 2) for r in runs],
                       "skipped_batches": runs[0]["skipped_batches"]}}
    print(f"resume {label}: {results[label]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="../shared/data/pt-corpus-instruct-layout")
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("order", "prepare", "resume"), default=None)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--order-scale", type=int, default=20,
                        help="also measure the order on the corpus repeated this many times (1: skip)")
    args = parser.parse_args()
    os.environ.update(ENV)
    from transformers import AutoTokenizer

    from ttl.tokenizer import train_from_path

    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    tokenizer_dir = args.tokenizer or str(work / "tokenizer")
    if args.tokenizer is None:
        train_from_path(args.corpus, tokenizer_dir, vocab_size=32000)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    figures = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "corpus": args.corpus}
    try:
        if args.only in (None, "order"):
            figures["order"] = measure_order(args.corpus, tokenizer, work)
            if args.order_scale > 1:
                big = make_bigger(args.corpus, work / f"corpus-{args.order_scale}x", args.order_scale)
                figures[f"order, {args.order_scale}x"] = measure_order(str(big), tokenizer, work)
        if args.only in (None, "prepare"):
            figures["prepare"] = measure_prepare(args.corpus, tokenizer_dir, work, args.repeats)
        if args.only in (None, "resume"):
            figures["resume"] = measure_resume(args.corpus, tokenizer, work, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
