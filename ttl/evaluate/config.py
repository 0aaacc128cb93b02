"""The settings of `python -m ttl.evaluate` (perplexity) and `python -m ttl.evaluate harness`
(lm-evaluation-harness), each declared once, with its type and default."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from ttl.cli import store


@dataclass
class EvaluationData:
    """The evaluation text; null values mean the training run's own setting (its config.yaml)."""

    # A file, a directory or a Hub dataset id; default: the run's data.path.
    path: str | None = None
    # A split name (validation: the source's own, else the held-out documents the run never
    # trained on), or `all`: every document.
    split: str = "validation"
    text_column: str | None = None
    val_fraction: float | None = None
    val_documents: int | None = None
    # ttl or eos; default: the run's, else ttl.
    packing: str | None = None
    # Stop after this many tokens of evaluation text; null = all.
    max_tokens: int | None = None


@dataclass
class EvaluateConfig:
    """`python -m ttl.evaluate checkpoints=<run dir | step dir | Hub id> [data.path=...]`:
    perplexity of every checkpoint on held-out text."""

    # A run directory (every step-<N>/ in it), one export directory, or a Hub model id.
    checkpoints: str = MISSING
    # Hub revisions to evaluate (TeenyTinyLlama's intermediate checkpoints are named like step100000).
    revisions: list[str] = field(default_factory=list)
    # Tokens of a Hub revision step<N> = N x this (8192 for TeenyTinyLlama).
    tokens_per_step: int | None = None
    # null: each checkpoint's own tokenizer.
    tokenizer: str | None = None
    data: EvaluationData = field(default_factory=EvaluationData)
    # packed (blocks as in training: the run's own validation perplexity) or sliding (Hugging Face's).
    method: str = "packed"
    # Default: the run's data.seq_len, else each model's context.
    seq_len: int | None = None
    # Sliding only; default seq_len // 2.
    stride: int | None = None
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "float32"
    # Default: <run dir>/evaluation, else ./evaluation.
    output_dir: str | None = None


@dataclass
class HarnessConfig:
    """`python -m ttl.evaluate harness checkpoints=<step dir | run dir | Hub id> [suite=card]
    tasks_dir=DIR`: EleutherAI's lm-evaluation-harness on ttl checkpoints."""

    checkpoints: str = MISSING
    revisions: list[str] = field(default_factory=list)
    tokens_per_step: int | None = None
    # A preset list of tasks (lm_eval_tasks/catalog.py SUITES; docs/evaluation.md lists them):
    # exams (ttl_enem, ttl_oab: data only from tasks_dir), card_pt, card_translated, tucano, or
    # card (all three).
    suite: str = "exams"
    # Tasks or groups to run instead of the suite's, as named: [ttl_assin2_rte,ttl_bluex], [arc_easy].
    tasks: list[str] | None = None
    # A folder of local copies, <folder>/<split>.jsonl (enem/, oab/, assin2/, arc_pt/, ...): a task
    # reads its copy when there is one, else its Hub dataset. Required for ttl_enem, ttl_oab and
    # the offline ttl_arc_pt, ttl_hellaswag_pt, ttl_truthfulqa_pt.
    tasks_dir: str | None = None
    # Few-shot examples for every task; null: each task's own (the benchmarks' published settings).
    num_fewshot: int | None = None
    # Questions per task: a count, or a fraction below 1; null = all.
    limit: float | None = None
    batch_size: int = 8
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 1234
    # Default: <run dir>/evaluation (a run dir, or a step-<N>/ inside one), else ./evaluation.
    output_dir: str | None = None


store(EvaluateConfig, "evaluate_schema")
store(HarnessConfig, "harness_schema")
