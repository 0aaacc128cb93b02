"""A fine-tuning run's outputs: the kept model as a Hugging Face directory, and its metrics."""

from __future__ import annotations

import json
from pathlib import Path

from ttl.rundir import write_dir, write_json

METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


def save_pretrained_atomically(model, tokenizer, final: Path, extra_json: dict[str, dict]) -> Path:
    """`save_pretrained` of model and tokenizer plus JSON files into `final`, whole or not at all."""

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, content in extra_json.items():
            (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False))

    return write_dir(final, fill)


def save_run_results(model, tokenizer, run_dir: Path, results: dict) -> None:
    """A fine-tuning run's outputs: `run_dir/model/` (with its metrics.json) and `run_dir/metrics.json`."""
    save_pretrained_atomically(model, tokenizer, run_dir / MODEL_DIR, {METRICS_FILE: results})
    write_json(run_dir / METRICS_FILE, results)
