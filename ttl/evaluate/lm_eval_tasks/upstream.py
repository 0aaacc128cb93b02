"""ARC, HellaSwag and TruthfulQA in Portuguese (the card's translated table): upstream lm-eval's
own okapi tasks `arc_pt`, `hellaswag_pt` and `truthfulqa_pt_mc2` when the data comes from the
Hub, ttl's `ttl_arc_pt`, `ttl_hellaswag_pt` and `ttl_truthfulqa_pt` (okapi.py) on the local
copies a tasks_dir holds (`arc_pt/`, `hellaswag_pt/`, `truthfulqa_pt/`, in the Hub's layout).

lm-eval ships these benchmarks with Okapi's data and prompts, so ttl runs them by name rather
than keeping a second definition in step with upstream; ttl's task files remain for offline
runs. `choose` picks ttl's task for a suite where `<tasks_dir>/<folder>/` holds JSONL files;
`with_card_shots` gives upstream's tasks the card's shot counts (their YAML sets none);
`tasks=[...]` runs the named tasks with their own settings. The card's columns (CARD_TABLES)
read either task's metric: `CardColumn.task`/`metric` upstream's, `offline` ttl's.

Every difference between upstream's tasks and ttl's: docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES, TASK_DATA
from ttl.evaluate.lm_eval_tasks.loaders import local_folder

if TYPE_CHECKING:
    from lm_eval.api.task import Task
    from lm_eval.tasks import TaskManager

# Upstream lm-eval's task -> ttl's offline task for the same benchmark (from the card's columns).
OFFLINE: dict[str, str] = {c.task: c.offline[0] for table in CARD_TABLES.values() for c in table
                           if c.offline is not None}
# The card's shot counts for upstream's tasks (those of ttl's task files).
CARD_SHOTS: dict[str, int] = {"arc_pt": 25, "hellaswag_pt": 0, "truthfulqa_pt_mc2": 0}


def choose(tasks: Sequence[str], tasks_dir: str | None) -> list[str]:
    """`tasks` with each of upstream's tasks replaced by ttl's offline one where tasks_dir holds
    its copy (`<tasks_dir>/<folder>/` with JSONL files)."""
    return [OFFLINE[t] if t in OFFLINE and local_folder(TASK_DATA[OFFLINE[t]], tasks_dir) is not None
            else t for t in tasks]


def with_card_shots(manager: TaskManager, tasks: Sequence[str]) -> list[str | Task]:
    """The tasks to give `lm_eval.simple_evaluate`: the names, except upstream's card tasks,
    built here by `manager` (their Hub data loads now) with the card's shot count."""
    pinned = [t for t in tasks if t in CARD_SHOTS]
    if not pinned:
        return list(tasks)
    built = manager.load(pinned)["tasks"]
    for name in pinned:
        built[name].set_config(key="num_fewshot", value=CARD_SHOTS[name])
    return [built.get(t, t) for t in tasks]
