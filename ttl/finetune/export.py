"""Write a fine-tuned model as a Hugging Face directory, atomically (temporary dir, then rename)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def save_pretrained_atomically(model, tokenizer, final: Path, extra_json: dict[str, dict]) -> Path:
    """`save_pretrained` of model and tokenizer plus JSON files into `final`; returns it.

    Written to a sibling temporary directory and renamed into place, so an interrupted export
    never leaves a half-written model under the final name.
    """
    final = Path(final)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    for name, content in extra_json.items():
        (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


def save_run_results(model, tokenizer, run_dir: Path, results: dict) -> None:
    """A fine-tuning run's outputs: `run_dir/model/` (with its metrics.json) and `run_dir/metrics.json`."""
    save_pretrained_atomically(model, tokenizer, run_dir / MODEL_DIR, {METRICS_FILE: results})
    (run_dir / METRICS_FILE).write_text(json.dumps(results, indent=2, ensure_ascii=False))
