"""Fixtures of the fine-tuning tests: a tiny Llama checkpoint in ttl's export layout, task data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import SHARED_DATA, run_cli

TASKS_DIR = SHARED_DATA / "tasks"
CONVERSATIONS = Path(__file__).with_name("conversations.jsonl")
# One thread: on a loaded 2-core machine two spinning OpenMP threads run a tiny model ~10x slower.
FAST_ENV = {"OMP_NUM_THREADS": "1", "TTL_TASKS_DIR": str(TASKS_DIR)}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A `step-<N>/`-style directory: the tiny model config (random weights) and the sample tokenizer.

    Built directly rather than by `ttl.train` (seconds instead of a minute); fine-tuning only
    needs the layout, the special ids and a tokenizer that matches the vocabulary.
    """
    import torch

    from ttl.model import build_model, llama_config
    from ttl.train.config import model_preset

    torch.manual_seed(0)
    model = build_model(llama_config(model_preset("tiny")))
    out = tmp_path_factory.mktemp("pretrained") / "step-0"
    model.save_pretrained(out)
    for item in Path(tiny_tokenizer_dir).iterdir():
        shutil.copy(item, out / item.name)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer_copy(tiny_tokenizer_dir):
    """A fresh tokenizer each time it is asked for (tests add tokens to it)."""
    from transformers import AutoTokenizer

    return lambda: AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def finetune_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    """`python -m ttl.finetune ARGS` in a subprocess with the offline, single-thread environment."""
    return run_cli(["-m", "ttl.finetune", *args], cwd, {**FAST_ENV, **(env or {})})
