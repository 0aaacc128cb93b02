"""Evaluation of ttl checkpoints: perplexity (`python -m ttl.evaluate`, `run`), lm-eval
benchmarks (`python -m ttl.evaluate harness`, `harness`) and their reports (`report`)."""

from ttl.checkpoints import find_checkpoints
from ttl.evaluate.report import (
    EvaluationRow,
    evaluations_table,
    plot_evaluations,
    read_csv,
    rows_from_run,
    run_table,
    write_csv,
)
from ttl.evaluate.run import evaluate, evaluate_checkpoints, evaluation_source

__all__ = ["EvaluationRow", "evaluate", "evaluate_checkpoints", "evaluation_source", "evaluations_table",
           "find_checkpoints", "plot_evaluations", "read_csv", "rows_from_run", "run_table", "write_csv"]
