"""The rows of `python -m ttl.evaluate harness`: one metric of one task on one checkpoint, read
from lm-eval's results (while running) or from the `harness-<checkpoint>.json` files it wrote
(`<run_dir>/evaluation/harness-step-<N>.json` for a run's exports: `step_rows`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ttl.checkpoints import Checkpoint
from ttl.rundir import harness_results_file


@dataclass
class HarnessRow:
    """One metric of one task on one checkpoint (a row of harness.csv)."""

    checkpoint: str
    revision: str | None
    step: int | None
    tokens: int | None
    task: str
    metric: str
    value: float
    stderr: float | None
    samples: int | None
    num_fewshot: int | None


def rows_from_results(checkpoint: Checkpoint, results: dict,
                      num_fewshot: int | None = None) -> list[HarnessRow]:
    """Every numeric metric of every task in lm-eval's results dict (`results`, `n-shot`,
    `n-samples` keys), stderr attached to its metric."""
    rows = []
    for task, metrics in results["results"].items():
        samples = (results.get("n-samples") or {}).get(task, {}).get("effective")
        shots = (results.get("n-shot") or {}).get(task, num_fewshot)
        for key, value in metrics.items():
            name = key.split(",")[0]
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if "_stderr" in name or name == "alias" or not numeric:
                continue
            stderr = metrics.get(key.replace(name, f"{name}_stderr", 1))
            rows.append(HarnessRow(
                checkpoint=checkpoint.source, revision=checkpoint.revision, step=checkpoint.step,
                tokens=checkpoint.tokens, task=task, metric=name, value=float(value),
                stderr=float(stderr) if isinstance(stderr, (int, float)) else None,
                samples=samples, num_fewshot=shots,
            ))
    return rows


def step_rows(run_dir: str | Path, step: int) -> list[HarnessRow]:
    """The harness rows of the run's export at `step` (its `harness-step-<N>.json`); [] when it
    was not evaluated."""
    path = harness_results_file(run_dir, step)
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    about = saved.get("checkpoint") or {}
    checkpoint = Checkpoint(source=about.get("source", path.stem.removeprefix("harness-")),
                            revision=about.get("revision"), step=about.get("step"),
                            tokens=about.get("tokens"))
    return rows_from_results(checkpoint, saved)
