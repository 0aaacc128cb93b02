"""Shared fixtures: offline environment, the shipped sample corpus, a trained tiny tokenizer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "CODECARBON_LOG_LEVEL": "error",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(OFFLINE_ENV)

requires_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "pt-corpus-mini").is_dir(),
    reason=f"{SHARED_DATA}/pt-corpus-mini is not available on this machine",
)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The Portuguese sample corpus shipped inside the package."""
    from ttl.data.sources import sample_corpus_dir

    return sample_corpus_dir()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, sample_dir) -> Path:
    """A 2,048-token tokenizer trained once on the sample corpus."""
    from ttl.tokenizer import train_from_path

    out = tmp_path_factory.mktemp("tok") / "sample-bpe-2048"
    train_from_path(str(sample_dir), out, vocab_size=2048, model_max_length=128)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    """The tiny tokenizer, loaded through AutoTokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A TTL_CACHE_DIR whose sample tokenizer is already trained (subprocess runs reuse it)."""
    import shutil

    cache = tmp_path_factory.mktemp("cache")
    (cache / "tokenizers").mkdir()
    shutil.copytree(tiny_tokenizer_dir, cache / "tokenizers" / "sample-bpe-2048")
    return cache


def recipe_study_smoke(tmp_path: Path, hub_layout: Path, switch: str) -> subprocess.CompletedProcess:
    """`python -m ttl.train experiment=recipe_study recipe_switch=SWITCH data.path=DIR`, 4 steps
    (compile and emissions off), in `tmp_path`: its run is `runs/recipe-study`."""
    return run_cli(["-m", "ttl.train", "experiment=recipe_study", f"recipe_switch={switch}",
                    f"data.path={hub_layout}", "model.recipe.max_steps=4", "hardware.compile=false",
                    "model.recipe.eval_every_n_steps=2", "model.recipe.checkpoint_every_n_steps=4",
                    "callbacks.emissions.enabled=false", "data.val_fraction=0.1", "paths.cache_dir=cache"],
                   tmp_path)


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m ...` in a subprocess with the offline environment; capture output."""
    full_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory, shared_cache) -> Path:
    """A finished `python -m ttl.train experiment=quickstart` run directory (step-50/100/150,
    CSV logs), trained once per session for the evaluation, generation and notebook tests.

    Tests may add files under it (e.g. `evaluation/`) but must not change what training wrote.
    """
    cwd = tmp_path_factory.mktemp("quickstart-run")
    result = run_cli(["-m", "ttl.train", "experiment=quickstart"], cwd,
                     {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "quickstart"


HUB_LAYOUT_README = """---
dataset_info:
  features:
  - name: text
    dtype: string
  - name: metadata
    dtype: string
  splits:
  - name: train
    num_examples: {rows}
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
# The shipped sample corpus in the layout of nicholasKluge/Pt-Corpus-Instruct (one split: train)
"""


@pytest.fixture(scope="session")
def sample_hub_layout(tmp_path_factory, sample_dir) -> Path:
    """The shipped sample corpus laid out as the Hub repository nicholasKluge/Pt-Corpus-Instruct
    is (README.md YAML, data/train-*.parquet with `text` and `metadata`, one split): what a
    user's local copy looks like, for commands that name `data.path=DIR`."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for path in sorted(sample_dir.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
    out = tmp_path_factory.mktemp("hub-layout") / "pt-corpus-instruct"
    (out / "data").mkdir(parents=True)
    table = pa.table({"text": [r["text"] for r in rows],
                      "metadata": [json.dumps(r.get("metadata", {})) for r in rows]})
    pq.write_table(table, out / "data" / "train-00000-of-00001.parquet")
    (out / "README.md").write_text(HUB_LAYOUT_README.format(rows=len(rows)))
    return out
