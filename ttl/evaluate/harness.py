"""`python -m ttl.evaluate harness ...`: EleutherAI's lm-evaluation-harness on ttl checkpoints
(docs/evaluation.md: suites, tasks_dir, outputs: harness.csv, harness.md, harness-<checkpoint>.json,
card.md, plots/<task>.png).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from ttl.card.results import HarnessRow, rows_from_results
from ttl.card.tables import card_markdown, checkpoint_table
from ttl.checkpoints import find_checkpoints, load_checkpoint, resolve_device
from ttl.cli import command_config, require
from ttl.errors import TTLError
from ttl.evaluate.config import HarnessConfig
from ttl.evaluate.lm_eval_tasks import TASKS_PATH
from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES, LOCAL_TASKS, SUITES, TASK_DATA, TTL_GROUPS, expand
from ttl.evaluate.lm_eval_tasks.loaders import data_source
from ttl.evaluate.lm_eval_tasks.upstream import OFFLINE, choose, with_card_shots
from ttl.evaluate.report import write_csv
from ttl.rundir import EVALUATION, evaluation_dir, load_config

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

USAGE = ("python -m ttl.evaluate harness checkpoints=<step dir | run dir | Hub id> "
         "[suite=exams|card|card_pt|card_translated|tucano | tasks=[...]] tasks_dir=DIR")

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
    """Write `<out_dir>/<task>.png` for every task in `rows`, its headline score against processed
    tokens (or steps, when token counts are unknown); return the paths."""
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


def _is_ttl_task(name: str) -> bool:
    return name in TASK_DATA or name in TTL_GROUPS


def resolve_tasks(suite: str, tasks: list[str] | None, tasks_dir: str | None = None) -> list[str]:
    """`tasks` when given, else the suite's tasks: upstream lm-eval's for ARC, HellaSwag and
    TruthfulQA, or ttl's offline ones where `tasks_dir` holds their copies."""
    if tasks is not None:
        if not tasks:
            raise TTLError("tasks=[]: name at least one task")
        return list(tasks)
    if suite not in SUITES:
        raise TTLError(f"suite={suite}: unknown; one of {', '.join(SUITES)} (or tasks=[...])")
    return choose(SUITES[suite], tasks_dir)


def check_tasks_dir(tasks_dir: str | None, tasks: Sequence[str]) -> str | None:
    """The absolute tasks_dir; a TTLError when a task that can only read it (LOCAL_TASKS) lacks it
    or its split files."""
    wanted = [t for t in expand(list(tasks)) if t in LOCAL_TASKS]
    if wanted and not tasks_dir:
        raise TTLError(f"tasks_dir is required for the local tasks {', '.join(wanted)}: {USAGE}")
    if not tasks_dir:
        return None
    root = Path(tasks_dir).expanduser()
    for name in wanted:
        folder = TASK_DATA[name].folder
        for split in TASK_DATA[name].splits:
            if not (root / folder / f"{split}.jsonl").is_file():
                raise TTLError(f"tasks_dir={tasks_dir}: no {folder}/{split}.jsonl there")
    if not root.is_dir():
        raise TTLError(f"tasks_dir={tasks_dir}: no such directory")
    return str(root.resolve())


def data_sources(tasks: Sequence[str], tasks_dir: str | None, manager: TaskManager) -> dict[str, str]:
    """Where each task reads its data: a local folder or `hub:<dataset id>` (lm-eval's groups and
    tags have none)."""
    sources = {}
    for task in expand(list(tasks)):
        if task in TASK_DATA:
            sources[task] = data_source(TASK_DATA[task], tasks_dir)
            continue
        config = getattr(manager.task_index.get(task), "cfg", None) or {}
        if config.get("dataset_path"):
            name = config.get("dataset_name")
            sources[task] = f"hub:{config['dataset_path']}" + (f":{name}" if name else "")
    return sources


def task_manager(tasks: Sequence[str], tasks_dir: str | None) -> TaskManager:
    """An lm-eval TaskManager with ttl's task folder (and lm-eval's own tasks only if needed)."""
    _, _, TaskManager = _import_lm_eval()
    builtin = any(not _is_ttl_task(t) for t in tasks)
    # Indexing lm-eval's ~15k built-in task configs takes seconds: only when one is asked for.
    manager = TaskManager(include_path=str(TASKS_PATH), include_defaults=builtin,
                          metadata={"tasks_dir": tasks_dir} if tasks_dir else None)
    known = set(manager.all_tasks)
    unknown = [t for t in tasks if t not in known]
    if unknown:
        raise TTLError(f"tasks={list(tasks)}: unknown lm-eval task {unknown[0]!r}; ttl's tasks: "
                       f"{', '.join(TASK_DATA)} (groups {', '.join(TTL_GROUPS)}); others from "
                       "`lm_eval ls tasks`")
    try:
        manager.load(list(tasks))  # fetches Hub datasets now, so offline fails before any model loads
    except (ConnectionError, OSError, ValueError) as error:
        names = expand(list(tasks))
        from_hub = [t for t in names if t in TASK_DATA and TASK_DATA[t].hub_path is not None
                    and data_source(TASK_DATA[t], tasks_dir).startswith("hub:")]
        upstream = [t for t in names if t in OFFLINE]
        hint = ""
        if from_hub:
            folders = ", ".join(dict.fromkeys(f"{TASK_DATA[t].folder}/" for t in from_hub))
            hint += (f" {', '.join(from_hub)} read their Hub datasets; offline, give tasks_dir=DIR "
                     f"holding copies ({folders} with <split>.jsonl in the Hub's layout).")
        if upstream:
            offline = [OFFLINE[t] for t in upstream]
            folders = ", ".join(f"{TASK_DATA[t].folder}/" for t in offline)
            hint += (f" {', '.join(upstream)} are lm-eval's tasks on their Hub datasets; offline, ttl's "
                     f"{', '.join(offline)} read copies in tasks_dir=DIR ({folders} with <split>.jsonl "
                     "in the Hub's layout), which the card's suites pick when they are there.")
        if any(not _is_ttl_task(t) and t not in OFFLINE for t in tasks):
            hint += (f" Tasks from lm-eval's registry read their data from the Hub; offline, use the "
                     f"local tasks {', '.join(LOCAL_TASKS)} with tasks_dir=...")
        raise TTLError(f"tasks={list(tasks)}: cannot load the task data ({type(error).__name__}: "
                       f"{str(error).strip().splitlines()[0][:200]}).{hint}") from error
    return manager


def harness_table(rows: Sequence[HarnessRow]) -> str:
    """Markdown: one line per checkpoint, one column per task (its headline metric, in %)."""
    tasks = list(dict.fromkeys(r.task for r in rows))
    chosen = {t: headline_metric(t, {r.metric for r in rows if r.task == t}) for t in tasks}
    lines = checkpoint_table(rows, [f"{t} ({chosen[t]})" for t in tasks], lambda own: [
        next((100 * r.value for r in own if (r.task, r.metric) == (t, chosen[t])), None) for t in tasks])
    return "\n".join(lines) + "\n"


def default_output_dir(checkpoints: str) -> Path:
    """`<run dir>/evaluation` for a run directory or a step-<N>/ export inside one, else
    ./evaluation (a Hub id, a stand-alone export)."""
    path = Path(checkpoints).expanduser()
    if path.is_dir() and load_config(path) is not None:
        return evaluation_dir(path.parent if (path / "config.json").is_file() else path)
    return Path(EVALUATION)


def run_harness(cfg: DictConfig | Mapping, log: Callable[[str], None] = print) -> list[HarnessRow]:
    """Run lm-eval (`HarnessConfig`'s keys: the command line's config, or a mapping of the keys
    to change); write and return the rows."""
    cfg = cfg if isinstance(cfg, DictConfig) else command_config(HarnessConfig, cfg)
    require(cfg, "checkpoints", USAGE)
    tasks = resolve_tasks(cfg.suite, None if cfg.tasks is None else list(cfg.tasks), cfg.tasks_dir)
    if cfg.limit is not None and cfg.limit <= 0:
        raise TTLError(f"limit={cfg.limit}: must be positive (a count, or a fraction below 1)")
    lm_eval, HFLM, _ = _import_lm_eval()
    tasks_dir = check_tasks_dir(cfg.tasks_dir, tasks)
    checkpoints = find_checkpoints(cfg.checkpoints, list(cfg.revisions), cfg.tokens_per_step)
    manager = task_manager(tasks, tasks_dir)
    sources = data_sources(tasks, tasks_dir, manager)
    for task, source in sources.items():
        log(f"{task}: data from {source}")
    limit = int(cfg.limit) if cfg.limit is not None and cfg.limit >= 1 else cfg.limit
    device = resolve_device(cfg.device)
    output = Path(cfg.output_dir) if cfg.output_dir else default_output_dir(cfg.checkpoints)
    output.mkdir(parents=True, exist_ok=True)
    rows: list[HarnessRow] = []
    for checkpoint in checkpoints:
        model, tokenizer = load_checkpoint(checkpoint, device, cfg.dtype)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)
        # A suite runs upstream's card tasks with the card's shot counts; tasks=[...] as named.
        specs = with_card_shots(manager, tasks) if cfg.tasks is None else tasks
        results = lm_eval.simple_evaluate(
            model=lm, tasks=specs, num_fewshot=cfg.num_fewshot, limit=limit, task_manager=manager,
            log_samples=False, random_seed=cfg.seed, numpy_random_seed=cfg.seed,
            torch_random_seed=cfg.seed, fewshot_random_seed=cfg.seed,
        )
        found = rows_from_results(checkpoint, results, cfg.num_fewshot)
        rows.extend(found)
        keep = {k: results.get(k) for k in ("results", "groups", "n-shot", "n-samples", "versions")}
        about = ("source", "name", "revision", "step", "tokens")
        keep |= {"checkpoint": {k: getattr(checkpoint, k) for k in about}, "data": sources}
        safe_name = checkpoint.name.replace("/", "__").replace("@", "_")
        (output / f"harness-{safe_name}.json").write_text(json.dumps(keep, indent=2, default=str))
        headline = {t: headline_metric(t, {r.metric for r in found if r.task == t})
                    for t in {r.task for r in found}}
        summary = ", ".join(f"{r.task} {r.metric} {r.value:.4f}" for r in found
                            if r.metric == headline[r.task])
        log(f"{checkpoint.name}: {summary}")
        del lm, model
    written = [write_csv(rows, output / "harness.csv", HarnessRow), output / "harness.md"]
    table = harness_table(rows)
    written[1].write_text(table)
    log(table)
    card = card_markdown(rows)
    if card is not None:
        (output / "card.md").write_text(card)
        log(card)
        written.append(output / "card.md")
        if plot_task_scores([r for r in rows if r.task in TASK_DATA or r.task in CARD_METRIC],
                            output / "plots"):
            written.append(output / "plots" / "<task>.png")
    log(f"wrote {', '.join(str(p) for p in written)}")
    return rows
