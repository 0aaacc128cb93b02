"""`python -m ttl.evaluate harness ...`: EleutherAI's lm-evaluation-harness on ttl checkpoints.

Examples:
    # offline: the Portuguese exams shipped as local lm-eval tasks (ttl/lm_eval_tasks/*.yaml)
    python -m ttl.evaluate harness checkpoints=runs/quickstart/step-150 tasks_dir=../shared/data/tasks
    # every step-<N>/ of a run, 50 questions per task
    python -m ttl.evaluate harness checkpoints=runs/quickstart tasks_dir=../shared/data/tasks limit=50
    # online: any task of lm-eval's registry (its data comes from the Hub)
    python -m ttl.evaluate harness checkpoints=runs/ttl-160m/step-458000 \
        tasks=[arc_easy,assin2_rte] num_fewshot=null

Writes harness.csv (one row per checkpoint, task and metric), harness.md (a table of the
headline metric per task) and harness-<checkpoint>.json (lm-eval's results) to `output_dir`.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from omegaconf import MISSING, DictConfig

from ttl.checkpoints import Checkpoint, find_checkpoints, load_checkpoint, resolve_device
from ttl.cli import command_config, require, typed
from ttl.errors import TTLError
from ttl.evaluate.report import format_tokens
from ttl.lm_eval_tasks import LOCAL_GROUP, LOCAL_TASKS, TASKS_PATH
from ttl.rundir import load_config

USAGE = ("python -m ttl.evaluate harness checkpoints=<step dir | run dir | Hub id> "
         "tasks_dir=<folder with enem/ and oab/>")
# The metric reported per task, in order of preference.
HEADLINE_METRICS = ("acc", "acc_norm", "f1", "mcc", "pearson", "exact_match")


@dataclass
class HarnessArgs:
    """The types of conf/harness.yaml's keys (its values are the defaults)."""

    checkpoints: str = MISSING  # step dir, run dir (every step-<N>/) or Hub id
    revisions: list[str] = MISSING
    tokens_per_step: int | None = MISSING
    tasks: list[str] = MISSING
    tasks_dir: str | None = MISSING  # folder holding enem/ and oab/ (for the local tasks)
    num_fewshot: int | None = MISSING  # null: each task's own default
    limit: float | None = MISSING  # questions per task (a count, or a fraction below 1)
    batch_size: int = MISSING
    device: str = MISSING
    dtype: str = MISSING
    seed: int = MISSING
    output_dir: str | None = MISSING


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


def _import_lm_eval():
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as error:
        raise TTLError(f"lm-eval is not installed ({error}); install it with pip install "
                       "'ttl[eval]' (or pip install 'lm-eval[hf]')") from error
    # lm-eval logs every step at INFO/WARNING; keep the terminal to our own summary.
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return lm_eval, HFLM, TaskManager


def _uses_local_tasks(tasks: Sequence[str]) -> bool:
    return any(t in LOCAL_TASKS or t == LOCAL_GROUP for t in tasks)


def check_tasks_dir(tasks_dir: str | None, tasks: Sequence[str]) -> str | None:
    """The absolute tasks_dir, refusing a missing one when local tasks are requested."""
    if not _uses_local_tasks(tasks):
        return str(Path(tasks_dir).expanduser().resolve()) if tasks_dir else None
    if not tasks_dir:
        raise TTLError(f"tasks_dir is required for the local tasks {', '.join(LOCAL_TASKS)}: {USAGE}")
    root = Path(tasks_dir).expanduser()
    wanted = [name.removeprefix("ttl_") for name in LOCAL_TASKS if name in tasks or LOCAL_GROUP in tasks]
    for name in wanted:
        for split in ("train", "test"):
            if not (root / name / f"{split}.jsonl").is_file():
                raise TTLError(f"tasks_dir={tasks_dir}: no {name}/{split}.jsonl there")
    return str(root.resolve())


def task_manager(tasks: Sequence[str], tasks_dir: str | None):
    """An lm-eval TaskManager with ttl's task folder (and lm-eval's own tasks only if needed)."""
    _, _, TaskManager = _import_lm_eval()
    builtin = any(t not in LOCAL_TASKS and t != LOCAL_GROUP for t in tasks)
    # Indexing lm-eval's ~15k built-in task configs takes seconds: only when one is asked for.
    manager = TaskManager(include_path=str(TASKS_PATH), include_defaults=builtin,
                          metadata={"tasks_dir": tasks_dir} if tasks_dir else None)
    known = set(manager.all_tasks)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise TTLError(f"tasks={list(tasks)}: unknown lm-eval task {unknown[0]!r}; local tasks: "
                       f"{', '.join(LOCAL_TASKS)} (group {LOCAL_GROUP}); others from `lm_eval ls tasks`")
    try:
        manager.load(list(tasks))  # fetches Hub datasets now, so offline fails before any model loads
    except (ConnectionError, OSError, ValueError) as error:
        hint = (f" Tasks from lm-eval's registry read their data from the Hub; offline, use the "
                f"local tasks {', '.join(LOCAL_TASKS)} with tasks_dir=...") if builtin else ""
        raise TTLError(f"tasks={list(tasks)}: cannot load the task data ({type(error).__name__}: "
                       f"{str(error).strip().splitlines()[0][:200]}).{hint}") from error
    return manager


def _rows(checkpoint: Checkpoint, results: dict, num_fewshot: int | None) -> list[HarnessRow]:
    rows = []
    for task, metrics in results["results"].items():
        samples = results.get("n-samples", {}).get(task, {}).get("effective")
        shots = results.get("n-shot", {}).get(task, num_fewshot)
        for key, value in metrics.items():
            name = key.split(",")[0]
            if "_stderr" in name or not isinstance(value, (int, float)) or name == "alias":
                continue
            stderr = metrics.get(key.replace(name, f"{name}_stderr", 1))
            rows.append(HarnessRow(
                checkpoint=checkpoint.source, revision=checkpoint.revision, step=checkpoint.step,
                tokens=checkpoint.tokens, task=task, metric=name, value=float(value),
                stderr=float(stderr) if isinstance(stderr, (int, float)) else None,
                samples=samples, num_fewshot=shots,
            ))
    return rows


def harness_table(rows: Sequence[HarnessRow]) -> str:
    """Markdown: one line per checkpoint, one column per task (its headline metric, in %)."""
    tasks = list(dict.fromkeys(r.task for r in rows))
    by_key: dict[tuple, dict[str, HarnessRow]] = {}
    for r in rows:
        by_key.setdefault((r.checkpoint, r.revision, r.step, r.tokens), {}).setdefault(r.task, r)
    chosen: dict[str, str] = {}
    for task in tasks:
        metrics = {r.metric for r in rows if r.task == task}
        chosen[task] = next((m for m in HEADLINE_METRICS if m in metrics), sorted(metrics)[0])
    header = ["Checkpoint", "Processed Tokens", *[f"{t} ({chosen[t]})" for t in tasks]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for (checkpoint, revision, _step, tokens), _ in by_key.items():
        name = Path(checkpoint).name if Path(checkpoint).is_dir() else checkpoint
        cells = [f"{name}@{revision}" if revision else name, format_tokens(tokens)]
        for task in tasks:
            hit = next((r for r in rows if (r.checkpoint, r.revision, r.task, r.metric)
                        == (checkpoint, revision, task, chosen[task])), None)
            cells.append("-" if hit is None else f"{100 * hit.value:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_harness(cfg: DictConfig | Mapping, log: Callable[[str], None] = print) -> list[HarnessRow]:
    """Run lm-eval (conf/harness.yaml's keys: the command line's config, or a mapping of the keys
    to change); write and return the rows."""
    cfg = typed(cfg if isinstance(cfg, DictConfig) else command_config("harness", cfg), HarnessArgs)
    require(cfg, "checkpoints", USAGE)
    tasks = list(cfg.tasks)
    if not tasks:
        raise TTLError("tasks=[]: name at least one task")
    if cfg.limit is not None and cfg.limit <= 0:
        raise TTLError(f"limit={cfg.limit}: must be positive (a count, or a fraction below 1)")
    lm_eval, HFLM, _ = _import_lm_eval()
    tasks_dir = check_tasks_dir(cfg.tasks_dir, tasks)
    checkpoints = find_checkpoints(cfg.checkpoints, list(cfg.revisions), cfg.tokens_per_step)
    manager = task_manager(tasks, tasks_dir)
    limit = int(cfg.limit) if cfg.limit is not None and cfg.limit >= 1 else cfg.limit
    device = resolve_device(cfg.device)
    local_run = Path(cfg.checkpoints).expanduser()
    output = Path(cfg.output_dir) if cfg.output_dir else (
        local_run / "evaluation" if local_run.is_dir() and load_config(local_run) is not None
        and not (local_run / "config.json").is_file() else Path("evaluation"))
    output.mkdir(parents=True, exist_ok=True)
    rows: list[HarnessRow] = []
    for checkpoint in checkpoints:
        model, tokenizer = load_checkpoint(checkpoint, device, cfg.dtype)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)
        results = lm_eval.simple_evaluate(
            model=lm, tasks=tasks, num_fewshot=cfg.num_fewshot, limit=limit, task_manager=manager,
            log_samples=False, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
            torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed,
        )
        found = _rows(checkpoint, results, cfg.num_fewshot)
        rows.extend(found)
        keep = {k: results.get(k) for k in ("results", "groups", "n-shot", "n-samples", "versions")}
        safe_name = checkpoint.name.replace("/", "__").replace("@", "_")
        (output / f"harness-{safe_name}.json").write_text(json.dumps(keep, indent=2, default=str))
        summary = ", ".join(f"{r.task} {r.metric} {r.value:.4f}" for r in found
                            if r.metric in HEADLINE_METRICS)
        log(f"{checkpoint.name}: {summary}")
        del lm, model
    with open(output / "harness.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(HarnessRow)])
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in asdict(r).items()} for r in rows)
    table = harness_table(rows)
    (output / "harness.md").write_text(table)
    log(table)
    log(f"wrote {output / 'harness.csv'}, {output / 'harness.md'}")
    return rows
