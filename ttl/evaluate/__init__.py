"""Evaluation of ttl checkpoints: perplexity per checkpoint, lm-eval benchmarks, reports.

- `python -m ttl.evaluate checkpoints=... [data.path=...] [output_dir=...]` (perplexity;
  `ttl.evaluate.run`)
- `python -m ttl.evaluate harness checkpoints=... tasks_dir=...` (lm-evaluation-harness;
  `ttl.evaluate.harness`)

For other tools (the model-card generator, notebooks): `evaluations_table(rows)` renders the
model card's markdown table; `rows_from_run(run_dir)` gives rows from the checkpoints'
trainer_state.json alone; `run_table(run_dir)` prefers a measured `evaluation/evaluation.csv`.
"""

from ttl.checkpoints import Checkpoint, find_checkpoints, load_checkpoint
from ttl.evaluate.report import (
    EvaluationRow,
    evaluations_table,
    format_tokens,
    plot_evaluations,
    read_csv,
    rows_from_run,
    run_table,
    write_csv,
)
from ttl.evaluate.run import evaluate, evaluate_checkpoints, evaluation_source
from ttl.rundir import read_trainer_state

__all__ = [
    "Checkpoint",
    "EvaluationRow",
    "evaluate",
    "evaluate_checkpoints",
    "evaluation_source",
    "evaluations_table",
    "find_checkpoints",
    "format_tokens",
    "load_checkpoint",
    "plot_evaluations",
    "read_csv",
    "read_trainer_state",
    "rows_from_run",
    "run_table",
    "write_csv",
]
