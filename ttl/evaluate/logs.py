"""A run's logged metrics (Lightning CSV logger: `logs/version_*/metrics.csv`) against tokens.

Each training session of a run (the first, then every resume) writes its own `version_<k>/`;
they are read in order and merged. Lightning's `step` column counts from 0 (the row logged
after optimizer step k says k - 1), so a row without `progress/tokens` (validation rows) is
placed at (step + 1) x tokens_per_step.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ttl.errors import TTLError


def _cell(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_metrics(run_dir: str | Path) -> list[dict[str, float | None]]:
    """Every logged row of every session, numbers as floats (empty cells None), with `version`."""
    logs = Path(run_dir) / "logs"
    found = {p.parent.name.removeprefix("version_"): p for p in logs.glob("version_*/metrics.csv")}
    files = [found[k] for k in sorted(filter(str.isdecimal, found), key=int)]  # session order
    if not files:
        raise TTLError(f"{run_dir}: no logs/version_*/metrics.csv (the run was not logged with "
                       "logger=csv; W&B runs keep their history under wandb/)")
    rows = []
    for version, path in enumerate(files):
        with open(path, newline="") as handle:
            for record in csv.DictReader(handle):
                row: dict[str, float | None] = {k: _cell(v) for k, v in record.items() if k}
                row["version"] = float(version)
                rows.append(row)
    return rows


def curve(rows: list[dict[str, float | None]], key: str,
          tokens_per_step: int) -> tuple[list[int], list[float]]:
    """(tokens, values) of metric `key`, ordered by tokens; the latest session wins on repeats."""
    points: dict[int, float] = {}
    for row in rows:
        value = row.get(key)
        if value is None:
            continue
        tokens = row.get("progress/tokens")
        if tokens is None and row.get("step") is not None:
            tokens = (row["step"] + 1) * tokens_per_step
        if tokens is not None:
            points[int(tokens)] = value
    ordered = sorted(points.items())
    return [t for t, _ in ordered], [v for _, v in ordered]
