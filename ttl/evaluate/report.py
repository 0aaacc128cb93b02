"""Evaluation results: rows, `evaluation.csv`, the model card's markdown table
(`ttl.card.tables.evaluations_table`), and the plot."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ttl.card.tables import evaluations_table
from ttl.errors import TTLError
from ttl.rundir import EVALUATION_CSV, evaluation_dir


@dataclass
class EvaluationRow:
    """One checkpoint's evaluation (a row of evaluation.csv)."""

    checkpoint: str
    revision: str | None = None
    step: int | None = None
    tokens: int | None = None  # training tokens processed when the checkpoint was saved
    perplexity: float | None = None
    loss: float | None = None  # mean token cross-entropy, nats
    eval_tokens: int | None = None  # predicted tokens the perplexity averages over
    method: str | None = None  # packed / sliding / training (val_ppl recorded by the run)
    seq_len: int | None = None
    stride: int | None = None
    val_ppl: float | None = None  # the run's own validation perplexity at that step
    energy_kwh: float | None = None
    emissions_kg_co2eq: float | None = None
    wall_time_s: float | None = None
    config_hash: str | None = None


CSV_COLUMNS = tuple(f.name for f in fields(EvaluationRow))
_INTS = {"step", "tokens", "eval_tokens", "seq_len", "stride"}
_FLOATS = {"perplexity", "loss", "val_ppl", "energy_kwh", "emissions_kg_co2eq", "wall_time_s"}


def write_csv(rows: Iterable, path: str | Path, row_type: type = EvaluationRow) -> Path:
    """Write dataclass rows to `path`, a column per field of `row_type` (None as an empty cell)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(row_type)])
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in asdict(row).items()} for row in rows)
    return path


def _parse_cell(column: str, cell: str):
    if cell == "":
        return None
    try:
        if column in _INTS:
            return int(float(cell))
        if column in _FLOATS:
            return float(cell)
    except ValueError as error:
        raise TTLError(f"column {column}: {cell!r} is not a number") from error
    return cell


def read_csv(path: str | Path) -> list[EvaluationRow]:
    """Rows of an evaluation.csv written by `write_csv`."""
    path = Path(path)
    if not path.is_file():
        raise TTLError(f"{path}: no such file")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"checkpoint", "tokens", "perplexity"} - set(reader.fieldnames or ())
        if missing:
            raise TTLError(f"{path}: not an evaluation.csv (missing columns {', '.join(sorted(missing))})")
        return [
            EvaluationRow(**{k: _parse_cell(k, v) for k, v in record.items() if k in CSV_COLUMNS})
            for record in reader
        ]


def rows_from_run(run_dir: str | Path) -> list[EvaluationRow]:
    """Rows for a run's `step-<N>/` exports from their trainer_state.json alone: the perplexity is
    the run's own validation perplexity at that step (`val_ppl`), not measured afresh."""
    from ttl.checkpoints import find_checkpoints

    return [
        EvaluationRow(checkpoint=c.source, step=c.step, tokens=c.tokens, perplexity=c.val_ppl,
                      method="training", val_ppl=c.val_ppl, energy_kwh=c.energy_kwh,
                      emissions_kg_co2eq=c.emissions_kg_co2eq, wall_time_s=c.wall_time_s,
                      config_hash=c.config_hash)
        for c in find_checkpoints(str(run_dir))
    ]


def run_table(run_dir: str | Path) -> str:
    """The markdown table of a run: from `<run_dir>/evaluation/evaluation.csv` when it exists
    (written by `python -m ttl.evaluate checkpoints=<run_dir>`), else from trainer_state.json."""
    measured = evaluation_dir(run_dir) / EVALUATION_CSV
    return evaluations_table(read_csv(measured) if measured.is_file() else rows_from_run(run_dir))


def plot_evaluations(rows: Iterable[EvaluationRow], path: str | Path, title: str = "") -> Path:
    """PNG with perplexity against processed tokens and against energy (when recorded)."""
    # Figure without pyplot: the Agg canvas, no global backend state (safe in notebooks/tests).
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.perplexity is not None]
    figure = Figure(figsize=(10, 4), layout="constrained")
    panels = (("tokens", "tokens", "processed tokens", "o-", "tab:blue", "token counts unknown"),
              ("energy_kwh", "energy", "energy (kWh)", "s-", "tab:green", "energy not recorded"))
    for axes, (key, name, xlabel, style, color, missing) in zip(figure.subplots(1, 2), panels, strict=True):
        known = [r for r in rows if getattr(r, key) is not None]
        if known:
            axes.plot([getattr(r, key) for r in known], [r.perplexity for r in known], style, color=color)
        else:
            axes.text(0.5, 0.5, missing, ha="center", transform=axes.transAxes)
            axes.set(xticks=[], yticks=[])
        for r in (known if key == "tokens" else []):
            if r.step is not None:
                axes.annotate(f"step {r.step}", (r.tokens, r.perplexity), fontsize=7,
                              textcoords="offset points", xytext=(4, 4))
        axes.set(xlabel=xlabel, ylabel="perplexity", title=f"perplexity vs {name}")
        axes.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
