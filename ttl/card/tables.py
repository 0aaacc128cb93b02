"""The model card's tables, shared with the evaluation reports: TeenyTinyLlama's Evaluations
table and its benchmark tables from `python -m ttl.evaluate harness` results (one line per
checkpoint, scores in %; the shots and questions scored under each say whether a run is
comparable with the card's). An unknown value prints "-", and so does the Average then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ttl.card.results import HarnessRow, step_rows
from ttl.rundir import step_of

TABLE_HEADER = ("Processed Tokens", "Perplexity", "Energy Consumption (kWh)", "Emissions (KgCO2eq)")


def format_tokens(tokens: int | None) -> str:
    """Token counts the way the model card prints them: 819.2M, 3.8B, 204.8K; "-" if unknown."""
    if tokens is None:
        return "-"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if tokens >= scale:
            return f"{tokens / scale:.1f}{suffix}"
    return str(tokens)


def format_quantity(value: float | None) -> str:
    """Two decimals, or two significant digits below 0.01 (tiny CPU runs use milli-kWh); "-" if unknown."""
    if value is None or not math.isfinite(value):
        return "-"
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.2f}"
    # Two significant digits in plain decimals (0.000061, not 6.1e-05).
    return f"{value:.{1 - math.floor(math.log10(abs(value)))}f}"


def evaluations_table(rows: Iterable) -> str:
    """The Evaluations table, one line per row in the given order: `EvaluationRow`s or mappings
    with their keys, or trainer_state.json dicts, which show `val_ppl` and only when it is known."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |",
             "|" + "|".join("-" * (len(h) + 2) for h in TABLE_HEADER) + "|"]
    for row in rows:
        row = row if isinstance(row, Mapping) else vars(row)
        if "perplexity" not in row:  # a trainer state: its export's perplexity, when measured
            if row.get("val_ppl") is None:
                continue
            row = {**row, "perplexity": row["val_ppl"]}
        quantities = [format_quantity(row.get(k)) for k in ("perplexity", "energy_kwh", "emissions_kg_co2eq")]
        lines.append("| " + " | ".join([format_tokens(row.get("tokens")), *quantities]) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CardColumn:
    """One column of a card table: its title, the lm-eval task and the metric it shows, and for
    a benchmark that runs as upstream lm-eval's task, ttl's offline task (on a tasks_dir copy)
    and its metric, which the column reads when that one ran instead."""

    title: str
    task: str
    metric: str
    offline: tuple[str, str] | None = None

    def reads(self, row: HarnessRow) -> bool:
        """Whether `row` holds this column's score (the task's metric, or the offline task's)."""
        return (row.task, row.metric) in ((self.task, self.metric), self.offline)


# The tables of TeenyTinyLlama's model card (and Tucano's two extra columns), in card order.
CARD_TABLES: dict[str, tuple[CardColumn, ...]] = {
    "pt": (
        CardColumn("ASSIN2 RTE", "ttl_assin2_rte", "f1_macro"),
        CardColumn("ASSIN2 STS", "ttl_assin2_sts", "pearson"),
        CardColumn("BLUEX", "ttl_bluex", "acc"),
        CardColumn("ENEM", "ttl_enem_challenge", "acc"),
        CardColumn("FAQUAD NLI", "ttl_faquad_nli", "f1_macro"),
        CardColumn("HateBR", "ttl_hatebr_offensive", "f1_macro"),
        CardColumn("OAB Exams", "ttl_oab_exams", "acc"),
    ),
    "translated": (
        # lm-eval's okapi tasks, or ttl's on a tasks_dir copy (ttl.evaluate.lm_eval_tasks.upstream).
        CardColumn("ARC", "arc_pt", "acc_norm", offline=("ttl_arc_pt", "acc_norm")),
        CardColumn("HellaSwag", "hellaswag_pt", "acc_norm", offline=("ttl_hellaswag_pt", "acc_norm")),
        CardColumn("MMLU", "ttl_mmlu_pt", "acc"),
        CardColumn("TruthfulQA", "truthfulqa_pt_mc2", "acc", offline=("ttl_truthfulqa_pt", "mc2")),
    ),
    "tucano": (
        CardColumn("CALAME-PT", "ttl_calame_pt", "acc"),
        CardColumn("LAMBADA-PT", "ttl_lambada_pt", "acc"),
    ),
}

CAPTIONS = {
    "pt": "Portuguese benchmarks (as eduagarcia/lm-evaluation-harness-pt runs them)",
    "translated": "Translated benchmarks (as Okapi's laiviet/lm-evaluation-harness runs them)",
    "tucano": "Last-word prediction (as Tucano's evaluation scripts run them)",
}


def checkpoint_label(checkpoint: str, revision: str | None) -> str:
    """A checkpoint as a table prints it: a local export by its directory name (step-150), also
    when read back elsewhere; `@revision` after it."""
    local = Path(checkpoint).is_dir() or step_of(Path(checkpoint)) is not None
    name = Path(checkpoint).name if local else checkpoint
    return f"{name}@{revision}" if revision else name


def checkpoint_table(rows: Sequence[HarnessRow], titles: Sequence[str],
                     scores: Callable[[list[HarnessRow]], list[float | None]]) -> list[str]:
    """Markdown lines: "Checkpoint", "Processed Tokens" and `titles`, then one line per checkpoint
    of `rows`, its cells `scores(its rows)` with two decimals ("-" when None)."""
    header = ["Checkpoint", "Processed Tokens", *titles]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for checkpoint, revision, _, tokens in dict.fromkeys((r.checkpoint, r.revision, r.step, r.tokens)
                                                         for r in rows):
        own = [r for r in rows if (r.checkpoint, r.revision) == (checkpoint, revision)]
        cells = [checkpoint_label(checkpoint, revision), format_tokens(tokens),
                 *["-" if s is None else f"{s:.2f}" for s in scores(own)]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def card_table(rows: Sequence[HarnessRow], columns: Sequence[CardColumn]) -> str | None:
    """One card table (markdown) over the checkpoints in `rows`; None when no column has a score."""
    if not any(c.reads(r) for r in rows for c in columns):
        return None

    def scores(own: list[HarnessRow]) -> list[float | None]:
        found = [next((100 * r.value for r in own if c.reads(r)), None) for c in columns]
        return [*found, None if None in found else sum(found) / len(found)]

    lines = checkpoint_table(rows, [*[c.title for c in columns], "Average"], scores)
    # What the numbers rest on: a run with other shot counts or a `limit` is not the card's.
    runs = [next((r for r in rows if c.reads(r)), None) for c in columns]
    shots = " / ".join("-" if r is None or r.num_fewshot is None else str(r.num_fewshot) for r in runs)
    samples = " / ".join("-" if r is None or r.samples is None else str(r.samples) for r in runs)
    lines += ["", f"Shots: {shots}; questions scored: {samples}."]
    return "\n".join(lines) + "\n"


def card_markdown(rows: Sequence[HarnessRow]) -> str | None:
    """Every card table that has a score in `rows`, each under its caption; None if none has."""
    tables = {name: card_table(rows, columns) for name, columns in CARD_TABLES.items()}
    return "\n".join(f"**{CAPTIONS[name]}**\n\n{table}" for name, table in tables.items() if table) or None


def card_tables(run_dir: str | Path, step: int) -> str | None:
    """The card tables of the run's export at `step`, from its harness results
    (`<run_dir>/evaluation/harness-step-<step>.json`); None when absent or without a card task."""
    return card_markdown(step_rows(run_dir, step))
