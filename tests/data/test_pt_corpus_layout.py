"""Pt-Corpus-Instruct as it really is: one `train` split in the Hub repository's layout.

Against a copy of that layout (`../shared/data/pt-corpus-instruct-layout`): the held-out
documents never reach a training row (in the prepared shards, and in what the DataModule
streams to two ranks after preparing the layout on first use), held-out membership does not
depend on the files, the paper's config trains on it, an interrupted prepare is never trusted
and resumes, and each bad input ends in one clear line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from ttl.data.holdout import HoldoutRule
from ttl.data.manifest import read_manifest
from ttl.data.packing import encode_documents
from ttl.data.shards import ShardReader
from ttl.data.sources import iter_documents, resolve_source

from ..conftest import OFFLINE_ENV, SHARED_DATA, run_cli
from .conftest import prepare_shards

LAYOUT = SHARED_DATA / "pt-corpus-instruct-layout"
pytestmark = pytest.mark.skipif(not LAYOUT.is_dir(), reason=f"{LAYOUT} is not available on this machine")

SEQ_LEN = 64
WINDOW = 12  # tokens: a planted document is found again by any 12-token window of it
RULE = HoldoutRule(0.01)  # the paper recipe's share (data.val_fraction)


def planted(count_each_side: int = 12) -> tuple[list[str], list[str]]:
    """Unique documents, `count_each_side` held out by the 1% rule and as many not."""
    held, kept, k = [], [], 0
    while len(held) < count_each_side or len(kept) < count_each_side:
        text = (f"Registro plantado {k:05d}. " + f"O tamanduá {k:05d} atravessa a ponte {k:05d} "
                "enquanto a capivara conta as estrelas do cerrado. " * 6)
        side = held if RULE.held_out(text) else kept
        if len(side) < count_each_side:
            side.append(text)
        k += 1
    return held, kept


def copy_layout(target: Path, extra: list[str] = (), files: int = 4,
                rows_per_file: int | None = None) -> Path:
    """The layout copy (README.md YAML, data/train-*.parquet) with `extra` documents spread over
    the middles of its files, laid out in `files` files (1 merges them), optionally keeping
    only the first `rows_per_file` documents of each file (a faster copy of the same layout)."""
    (target / "data").mkdir(parents=True)
    shutil.copy(LAYOUT / "README.md", target / "README.md")
    tables = [pq.read_table(p) for p in sorted((LAYOUT / "data").glob("train-*.parquet"))]
    if rows_per_file is not None:
        tables = [t.slice(0, rows_per_file) for t in tables]
    per = -(-len(extra) // len(tables)) if extra else 0
    out = []
    for i, table in enumerate(tables):
        rows = table.to_pylist()
        mine = [{"text": t, "metadata": '{"source": "planted"}'} for t in extra[i * per:(i + 1) * per]]
        middle = len(rows) // 2
        out.append(pa.Table.from_pylist(rows[:middle] + mine + rows[middle:], schema=table.schema))
    if files == 1:
        out = [pa.concat_tables(out)]
    for i, table in enumerate(out):
        name = f"train-{i:05d}-of-{len(out):05d}.parquet"
        pq.write_table(table, target / "data" / name, row_group_size=500)
    return target


def window_hashes(ids: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of every WINDOW-token window of each row."""
    powers = np.uint64(1_000_003) ** np.arange(WINDOW, dtype=np.uint64)
    windows = sliding_window_view(ids.astype(np.uint64), WINDOW, axis=-1)
    return (windows * powers).sum(axis=-1, dtype=np.uint64).ravel()


class Finder:
    """Which planted documents occur (by any of their windows) in a stream of rows."""

    def __init__(self, tokenizer, texts: list[str]) -> None:
        owners: dict[int, set[str]] = {}
        for text in texts:
            flat, _ = encode_documents(tokenizer, [text], "ttl")
            for h in window_hashes(flat[None, 1:]).tolist():  # without <s>: any row offset
                owners.setdefault(h, set()).add(text)
        # Only windows that belong to one planted document identify it.
        self.owner = {h: next(iter(t)) for h, t in owners.items() if len(t) == 1}
        assert set(self.owner.values()) == set(texts)
        self.keys = np.fromiter(self.owner, dtype=np.uint64)

    def found(self, rows) -> set[str]:
        seen: set[str] = set()
        for start in range(0, len(rows), 2048):
            hits = np.intersect1d(window_hashes(np.asarray(rows[start:start + 2048])), self.keys)
            seen.update(self.owner[int(h)] for h in hits)
        return seen


def shard_rows(root: Path, split: str) -> np.ndarray:
    manifest = read_manifest(root)
    reader = ShardReader(root, manifest.splits[split].shards, manifest.seq_len)
    return np.concatenate([reader.read(c).ids for c in reader.chunks])


@pytest.fixture(scope="module")
def planted_corpus(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    held, kept = planted()
    corpus = copy_layout(tmp_path_factory.mktemp("planted") / "pt-corpus", held + kept, rows_per_file=600)
    return corpus, held, kept


def test_the_layout_has_one_train_split_and_the_rule_holds_out_one_percent(tmp_path):
    source = resolve_source(str(LAYOUT), "validation", "text", "train", "validation", 0.01)
    assert list(source.corpus.splits) == ["train"] and len(source.corpus.splits["train"]) == 4
    assert source.corpus.documents == {"train": 8849}
    held = list(iter_documents(source))
    assert source.holdout == RULE and 40 < len(held) < 140  # 1% of 8,849, binomial spread


def test_no_held_out_document_reaches_a_prepared_training_row(planted_corpus, tiny_tokenizer_dir,
                                                              tiny_tokenizer, tmp_path):
    corpus, held, kept = planted_corpus
    out = prepare_shards(corpus, tiny_tokenizer_dir, tmp_path / "shards", seq_len=SEQ_LEN, num_proc=2,
                         rows_per_group=128, groups_per_shard=64)
    finder = Finder(tiny_tokenizer, held + kept)
    in_train, in_val = finder.found(shard_rows(out, "train")), finder.found(shard_rows(out, "validation"))
    assert in_train == set(kept) and in_val == set(held)
    manifest = read_manifest(out)
    assert manifest.holdout["fraction"] == 0.01 and manifest.source_splits["validation"].startswith("train")
    assert manifest.holdout["held_out_documents"] == manifest.splits["validation"].documents
    assert manifest.splits["train"].documents + manifest.splits["validation"].documents == 4 * 600 + 24


def test_no_held_out_document_reaches_a_training_row_streamed_after_first_use_preparation(
        planted_corpus, tiny_tokenizer, tmp_path):
    """data.format=auto on the layout: prepared into the cache on first use, then streamed."""
    from ttl.data.datamodule import DataSettings, TTLDataModule

    corpus, held, kept = planted_corpus
    finder = Finder(tiny_tokenizer, held + kept)
    dm = TTLDataModule(DataSettings(path=str(corpus), seq_len=SEQ_LEN, max_val_blocks=None,
                                    prepared_dir=str(tmp_path / "prepared"), prepare_num_proc=2),
                       tiny_tokenizer, 4)
    dm.setup("fit")
    assert dm.prepare_first and dm.describe()["holdout"]["fraction"] == 0.01
    assert finder.found(dm.val_dataset.rows.ids) == set(held)
    stream = dm.train_dataset
    stream.epochs, stream.world_size = 1, 2
    rows = []
    for rank in (0, 1):  # both ranks of a 2-process run, one epoch each
        stream.rank = rank
        rows.extend(b[0].numpy() for b in stream)
    assert finder.found(np.concatenate(rows)) == set(kept)


def test_held_out_membership_does_not_depend_on_the_number_of_files(tmp_path):
    one = copy_layout(tmp_path / "one-file", files=1)

    def held(path):
        return sorted(iter_documents(resolve_source(str(path), "validation", "text", "train",
                                                    "validation", 0.01)))

    assert len(list((one / "data").glob("*.parquet"))) == 1
    assert held(one) == held(LAYOUT) and len(held(LAYOUT)) > 40


# -- the paper's command on the layout -------------------------------------------------------

PAPER_SHRUNK = ["experiment=ttl_160m", "trainer=cpu", "hardware.micro_batch_size=4", "model.vocab_size=2048",
                "model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=2",
                "model.num_key_value_heads=2", "model.intermediate_size=128", f"data.seq_len={SEQ_LEN}",
                f"model.recipe.tokens_per_step={4 * SEQ_LEN}", "data.num_workers=0",
                "callbacks.samples.max_new_tokens=8"]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, tiny_tokenizer_dir):
    """`python -m ttl.train experiment=ttl_160m` (the paper's 160m recipe, model shrunk) on the
    layout copy for 3 steps: the first run prepares the corpus into the cache."""
    home = tmp_path_factory.mktemp("paper")
    env = {"TTL_CACHE_DIR": str(home / "cache")}
    args = ["-m", "ttl.train", *PAPER_SHRUNK, f"tokenizer.path={tiny_tokenizer_dir}", f"data.path={LAYOUT}",
            f"paths.runs_dir={home / 'runs'}"]
    result = run_cli([*args, "trainer.max_steps=3"], home, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return home, env, args, result


@pytest.mark.slow
def test_the_paper_config_prepares_the_layout_once_and_trains_on_it(paper_run):
    home, env, args, first = paper_run
    assert "preparing" in first.stdout and "prepared file 4/4" in first.stdout
    assert "documents held out by content hash (1.00%), never trained on" in first.stdout
    run = home / "runs" / "ttl-160m"
    record = json.loads((run / "data.json").read_text())
    assert record["format"] == "shards" and record["holdout"]["fraction"] == 0.01
    assert record["train"]["documents"] + record["validation"]["documents"] == 8849
    sets = list((home / "cache" / "shards").glob("*/manifest.json"))
    assert len(sets) == 1 and read_manifest(sets[0].parent).holdout == record["holdout"]
    # The same command again: it resumes from step 3 and reads the prepared set as it is.
    again = run_cli([*args, "trainer.max_steps=5"], home, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "preparing" not in again.stdout
    assert "Restoring states from the checkpoint" in again.stdout + again.stderr
    assert (run / "step-5").is_dir() and len(list((home / "cache" / "shards").glob("*/manifest.json"))) == 1


def _snapshot(*roots: Path) -> dict[str, str]:
    files = [p for root in roots for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _bad_corpus(kind: str, tmp_path: Path) -> tuple[Path, list[str], str]:
    if kind == "cut short":
        corpus = copy_layout(tmp_path / "cut")
        victim = corpus / "data" / "train-00002-of-00004.parquet"
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size * 2 // 3])
        return corpus, [], r"train-00002-of-00004.parquet: not a complete parquet file .*download it again"
    if kind == "no text column":
        corpus = tmp_path / "notext" / "data"
        corpus.mkdir(parents=True)
        pq.write_table(pa.table({"content": ["x"] * 10}), corpus / "train-00000-of-00001.parquet")
        return corpus.parent, [], r"no column 'text' \(columns: content\); set data.text_column"
    if kind == "empty validation":
        corpus = tmp_path / "emptyval"
        corpus.mkdir()
        schema = pa.schema([("text", pa.string()), ("metadata", pa.string())])
        pq.write_table(pq.read_table(sorted((LAYOUT / "data").glob("*.parquet"))[0]),
                       corpus / "train-00000-of-00001.parquet")
        pq.write_table(schema.empty_table(), corpus / "validation-00000-of-00001.parquet")
        return corpus, [], r"the 'validation' split holds no documents \(.*validation-00000-of-00001"
    return LAYOUT, ["data.val_fraction=1.5"], r"data.val_fraction=1.5: must be a number strictly between 0"


@pytest.mark.slow
def test_a_file_cut_short_ends_the_command_in_one_line_touching_nothing(paper_run, tmp_path):
    home, env, args, _ = paper_run
    before = _snapshot(home / "runs", home / "cache")
    corpus, extra, expected = _bad_corpus("cut short", tmp_path)
    result = run_cli([*args, f"data.path={corpus}", "trainer.max_steps=7"], home, env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("ttl.train: error: ")
    assert re.search(expected, lines[0]), lines[0]
    assert _snapshot(home / "runs", home / "cache") == before


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["no text column", "empty validation", "val_fraction"])
def test_bad_input_is_a_clear_error_that_touches_no_earlier_run_or_cache(kind, paper_run, tmp_path,
                                                                         monkeypatch):
    """In-process (the command line turns any TTLError into one line and exit code 2, as above)."""
    from hydra import compose, initialize_config_module

    from ttl.cli import register_resolvers
    from ttl.errors import TTLError
    from ttl.train.pretrain import run

    home, env, args, _ = paper_run
    monkeypatch.setenv("TTL_CACHE_DIR", env["TTL_CACHE_DIR"])
    before = _snapshot(home / "runs", home / "cache")
    corpus, extra, expected = _bad_corpus(kind, tmp_path)
    register_resolvers()
    with initialize_config_module("ttl.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*args[2:], f"data.path={corpus}", "trainer.max_steps=7", *extra])
    with pytest.raises(TTLError, match=expected):
        run(cfg)
    assert _snapshot(home / "runs", home / "cache") == before


# -- an interrupted prepare -------------------------------------------------------------------

@pytest.mark.slow
def test_a_prepare_killed_halfway_is_not_trusted_and_a_rerun_finishes_it(tiny_tokenizer_dir, tmp_path):
    from ttl.data.datamodule import DataSettings, TTLDataModule
    from ttl.errors import TTLError

    corpus = copy_layout(tmp_path / "corpus", rows_per_file=1000)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ttl.data.prepare", f"data_path={corpus}",
               f"tokenizer={tiny_tokenizer_dir}", f"output_dir={out}", f"seq_len={SEQ_LEN}", "num_proc=1",
               "batch_size=64"]
    process = subprocess.Popen(command, env={**os.environ, **OFFLINE_ENV}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    progress = out.with_name("out.partial") / "progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress.is_file() and len(json.loads(progress.read_text())["jobs"]) >= 1:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and not (out.with_name("out.partial") / "manifest.json").exists()
    with pytest.raises(TTLError, match="no manifest; prepare shards"):
        TTLDataModule(DataSettings(path=str(out.with_name("out.partial")), seq_len=SEQ_LEN, format="shards"),
                      None, 4).setup("fit")
    again = run_cli(command[1:], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout and "files already prepared" in again.stdout
    reference = prepare_shards(corpus, tiny_tokenizer_dir, tmp_path / "reference", seq_len=SEQ_LEN,
                               rows_per_group=128, groups_per_shard=512, batch_size=512)
    assert read_manifest(out).fingerprint == read_manifest(reference).fingerprint
    assert np.array_equal(shard_rows(out, "train"), shard_rows(reference, "train"))
    assert not out.with_name("out.partial").exists()
