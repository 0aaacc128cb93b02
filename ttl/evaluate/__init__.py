"""Evaluation of ttl checkpoints: perplexity per checkpoint (`python -m ttl.evaluate`,
`ttl.evaluate.run`), lm-eval benchmarks (`python -m ttl.evaluate harness`, `ttl.evaluate.harness`),
reports.

For other tools (notebooks): `evaluations_table(rows)` renders the model card's markdown table;
`rows_from_run(run_dir)` gives rows from the checkpoints' trainer_state.json alone;
`run_table(run_dir)` prefers a measured `evaluation/evaluation.csv`.
"""

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
