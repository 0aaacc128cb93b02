"""One PNG per task: its headline score against processed tokens (or steps, when token counts
are unknown), one point per checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ttl.card.results import HarnessRow
from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES

# The metric reported per task when the card names none, in order of preference.
HEADLINE_METRICS = ("acc", "acc_norm", "f1_macro", "f1", "mcc", "pearson", "mc2", "exact_match")
# Each card task's metric and column title: upstream lm-eval's task and ttl's offline one alike.
CARD_METRIC = {task: (metric, c.title) for table in CARD_TABLES.values() for c in table
               for task, metric in ((c.task, c.metric), c.offline or (c.task, c.metric))}


def headline_metric(task: str, metrics: set[str]) -> str:
    """The card's metric for a card task, else the first of HEADLINE_METRICS the task reports."""
    if task in CARD_METRIC and CARD_METRIC[task][0] in metrics:
        return CARD_METRIC[task][0]
    return next((m for m in HEADLINE_METRICS if m in metrics), sorted(metrics)[0])


def plot_task_scores(rows: Sequence[HarnessRow], out_dir: str | Path) -> list[Path]:
    """Write `<out_dir>/<task>.png` for every task in `rows`; return the paths."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task in dict.fromkeys(r.task for r in rows):
        metric = headline_metric(task, {r.metric for r in rows if r.task == task})
        points = [r for r in rows if r.task == task and r.metric == metric]
        by_tokens = all(r.tokens is not None for r in points)
        if not by_tokens and not all(r.step is not None for r in points):
            continue  # Hub checkpoints without revisions: nothing to put on the x axis
        points.sort(key=lambda r: r.tokens if by_tokens else r.step)
        xs = [r.tokens if by_tokens else r.step for r in points]
        figure = Figure(figsize=(6, 4), layout="constrained")
        axes = figure.subplots()
        axes.plot(xs, [100 * r.value for r in points], "o-")
        title = CARD_METRIC.get(task, (metric, task))[1]
        shots = points[0].num_fewshot
        axes.set(xlabel="processed tokens" if by_tokens else "step", ylabel=f"{metric} (%)",
                 title=title if shots is None else f"{title} ({shots}-shot)")
        axes.grid(alpha=0.3)
        path = out_dir / f"{task}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    return written
