"""The benchmark tables of TeenyTinyLlama's model card, filled from `python -m ttl.evaluate
harness` results: one line per checkpoint, scores in %, the card's columns, then Average.

    Checkpoint | Processed Tokens | ASSIN2 RTE | ASSIN2 STS | BLUEX | ENEM | FAQUAD NLI | HateBR | OAB Exams
    Checkpoint | Processed Tokens | ARC | HellaSwag | MMLU | TruthfulQA
    Checkpoint | Processed Tokens | CALAME-PT | LAMBADA-PT

A table is left out when none of its tasks ran; a missing score prints "-", and so does the
Average then (the card averages every column). Under each table, the shots and the number of
questions scored per column say whether the run is comparable with the card's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ttl.harness_rows import HarnessRow, read_harness_json
from ttl.lm_eval_tasks.catalog import CARD_TABLES, CardColumn
from ttl.rundir import step_dir_name, step_of
from ttl.tables import format_tokens

CAPTIONS = {
    "pt": "Portuguese benchmarks (as eduagarcia/lm-evaluation-harness-pt runs them)",
    "translated": "Translated benchmarks (as Okapi's laiviet/lm-evaluation-harness runs them)",
    "tucano": "Last-word prediction (as Tucano's evaluation scripts run them)",
}


def _checkpoints(rows: Sequence[HarnessRow]) -> list[tuple]:
    return list(dict.fromkeys((r.checkpoint, r.revision, r.step, r.tokens) for r in rows))


def _label(checkpoint: str, revision: str | None) -> str:
    # A local export prints as its directory name (step-150), also when read back elsewhere.
    local = Path(checkpoint).is_dir() or step_of(Path(checkpoint)) is not None
    name = Path(checkpoint).name if local else checkpoint
    return f"{name}@{revision}" if revision else name


def _cell(rows: Sequence[HarnessRow], key: tuple, column: CardColumn) -> HarnessRow | None:
    return next((r for r in rows if (r.checkpoint, r.revision) == key[:2] and r.task == column.task
                 and r.metric == column.metric), None)


def card_table(rows: Sequence[HarnessRow], columns: Sequence[CardColumn]) -> str | None:
    """One card table (markdown) over the checkpoints in `rows`; None when no column has a score."""
    if not any(r.task == c.task and r.metric == c.metric for r in rows for c in columns):
        return None
    header = ["Checkpoint", "Processed Tokens", *[c.title for c in columns], "Average"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for key in _checkpoints(rows):
        hits = [_cell(rows, key, c) for c in columns]
        scores = [None if h is None else 100 * h.value for h in hits]
        average = None if None in scores else sum(scores) / len(scores)
        cells = [_label(key[0], key[1]), format_tokens(key[3]),
                 *["-" if s is None else f"{s:.2f}" for s in [*scores, average]]]
        lines.append("| " + " | ".join(cells) + " |")
    # What the numbers rest on: a run with other shot counts or a `limit` is not the card's.
    runs = [next((r for r in rows if r.task == c.task and r.metric == c.metric), None) for c in columns]
    shots = " / ".join("-" if r is None or r.num_fewshot is None else str(r.num_fewshot) for r in runs)
    samples = " / ".join("-" if r is None or r.samples is None else str(r.samples) for r in runs)
    lines += ["", f"Shots: {shots}; questions scored: {samples}."]
    return "\n".join(lines) + "\n"


def card_markdown(rows: Sequence[HarnessRow]) -> str | None:
    """Every card table that has a score in `rows`, each under its caption; None if none has."""
    parts = []
    for name, columns in CARD_TABLES.items():
        table = card_table(rows, columns)
        if table is not None:
            parts.append(f"**{CAPTIONS[name]}**\n\n{table}")
    return "\n".join(parts) if parts else None


def card_tables(run_dir: str | Path, step: int) -> str | None:
    """The card tables of one checkpoint of a run, from
    `<run_dir>/evaluation/harness-step-<step>.json` (written by `python -m ttl.evaluate harness
    checkpoints=<run_dir>` or `checkpoints=<run_dir>/step-<step>`); None when that file is
    absent or holds no card task."""
    path = Path(run_dir) / "evaluation" / f"harness-{step_dir_name(step)}.json"
    if not path.is_file():
        return None
    return card_markdown(read_harness_json(path))
