"""Which lm-eval tasks ttl ships, where each reads its data (`<tasks_dir>/<folder>/<split>.jsonl`
when that folder exists, else its Hub dataset; docs/evaluation.md), and the suites they make up:
the card columns' tasks, for which the harness swaps in the offline twin where tasks_dir holds
its copy (upstream.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ttl.card.tables import CARD_TABLES


@dataclass(frozen=True)
class TaskData:
    """Where a task's data lives: a folder under `tasks_dir`, else a Hub dataset (config
    `hub_name`). `splits`: the `<split>.jsonl` files a copy holds (checked before any model
    loads for the tasks with no Hub dataset)."""

    folder: str
    hub_path: str | None = None
    hub_name: str | None = None
    splits: tuple[str, ...] = ("train", "test")

    @property
    def hub_id(self) -> str:
        """`path` or `path:name` (of a task with a Hub dataset)."""
        return f"{self.hub_path}:{self.hub_name}" if self.hub_name else str(self.hub_path)


TASK_DATA: dict[str, TaskData] = {
    # ttl's log-likelihood exams (no Hub copy in this layout).
    "ttl_enem": TaskData("enem"),
    "ttl_oab": TaskData("oab"),
    # TeenyTinyLlama's Portuguese table: the Open Portuguese LLM Leaderboard's tasks
    # (eduagarcia/lm-evaluation-harness-pt).
    "ttl_assin2_rte": TaskData("assin2", "nilc-nlp/assin2"),
    "ttl_assin2_sts": TaskData("assin2", "nilc-nlp/assin2"),
    "ttl_bluex": TaskData("bluex", "eduagarcia-temp/BLUEX_without_images"),
    "ttl_enem_challenge": TaskData("enem", "eduagarcia/enem_challenge"),
    "ttl_faquad_nli": TaskData("faquad_nli", "ruanchaves/faquad-nli"),
    "ttl_hatebr_offensive": TaskData("hatebr", "eduagarcia/portuguese_benchmark", "HateBR_offensive_binary"),
    "ttl_oab_exams": TaskData("oab", "eduagarcia/oab_exams"),
    # TeenyTinyLlama's translated table: Okapi's datasets (laiviet/lm-evaluation-harness),
    # as re-published on the Hub by alexandrainst. From the Hub, ARC, HellaSwag and TruthfulQA
    # run as lm-eval's own okapi tasks; ttl's read only local copies in that layout.
    "ttl_arc_pt": TaskData("arc_pt"),
    "ttl_hellaswag_pt": TaskData("hellaswag_pt", splits=("val",)),
    "ttl_mmlu_pt": TaskData("mmlu_pt", "alexandrainst/m_mmlu", "pt"),
    "ttl_truthfulqa_pt": TaskData("truthfulqa_pt", splits=("val",)),
    # Tucano's last-word prediction tasks (Nkluge-correa/Tucano, evaluations/).
    "ttl_calame_pt": TaskData("calame_pt", "NOVA-vision-language/calame-pt", "all", ("train",)),
    "ttl_lambada_pt": TaskData("lambada_pt", "TucanoBR/lambada-pt", splits=("train",)),
}

SUITES: dict[str, tuple[str, ...]] = {
    "exams": ("ttl_enem", "ttl_oab"),
    "card_pt": tuple(c.task for c in CARD_TABLES["pt"]),
    "card_translated": tuple(c.task for c in CARD_TABLES["translated"]),
    "tucano": tuple(c.task for c in CARD_TABLES["tucano"]),
    "card": tuple(c.task for table in CARD_TABLES.values() for c in table),
}

# The tasks that need tasks_dir (no Hub copy).
LOCAL_TASKS: tuple[str, ...] = tuple(name for name, data in TASK_DATA.items() if data.hub_path is None)

# lm-eval tags (groups) defined by the task YAML files: ttl's tasks, offline copies included.
TTL_GROUPS: dict[str, tuple[str, ...]] = {
    "ttl_pt_exams": SUITES["exams"],
    "ttl_card_pt": SUITES["card_pt"],
    "ttl_card_translated": tuple(c.offline[0] if c.offline else c.task for c in CARD_TABLES["translated"]),
    "ttl_tucano": SUITES["tucano"],
}


def expand(tasks: list[str] | tuple[str, ...]) -> list[str]:
    """Task names with ttl's groups replaced by their tasks (order kept, duplicates dropped)."""
    return list(dict.fromkeys(task for name in tasks for task in TTL_GROUPS.get(name, (name,))))
