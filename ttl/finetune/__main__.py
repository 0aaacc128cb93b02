"""`python -m ttl.finetune task=<name> checkpoint=<dir or Hub id> [overrides]`.

Examples:
    python -m ttl.finetune task=hatebr checkpoint=runs/quickstart/step-150
    python -m ttl.finetune task=assin2 checkpoint=nicholasKluge/TeenyTinyLlama-160m trainer=a100
    python -m ttl.finetune task=chat checkpoint=runs/quickstart/step-150 data.path=conversations.jsonl
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources
from typing import NoReturn

import hydra
from omegaconf import DictConfig

import ttl.finetune.config  # noqa: F401  (registers the config's schemas)
from ttl.cli import invoke, register_resolvers
from ttl.errors import TTLError
from ttl.finetune.run import finetune


def available_tasks() -> list[str]:
    """Names of the task configs shipped in conf/finetune/task/."""
    folder = resources.files("ttl.conf.finetune") / "task"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def check_task_argument(args: list[str]) -> None:
    """Refuse a missing or unknown `task=` before Hydra (whose message spans several lines)."""
    tasks = available_tasks()
    values = [arg.split("=", 1)[1] for arg in args if arg.startswith("task=")]
    if not values:
        if any(arg.startswith("--") for arg in args):  # --help, --cfg job, ...: Hydra's business
            return
        raise TTLError(f"task is required: python -m ttl.finetune task=<{'|'.join(tasks)}> checkpoint=DIR")
    for name in values[-1].split(","):  # a sweep lists several: task=hatebr,assin2
        if name not in tasks:
            raise TTLError(f"task={name}: unknown task; choose one of {', '.join(tasks)}")


def _fail(error: TTLError) -> NoReturn:
    print(f"ttl.finetune: error: {error}", file=sys.stderr)
    sys.exit(2)


@hydra.main(config_path="pkg://ttl.conf.finetune", config_name="finetune", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> dict | None:
    try:
        return finetune(cfg)  # a sweep's summary reads the returned results
    except TTLError as error:
        _fail(error)


def usage() -> str:
    """The command's usage and its tasks (Hydra's --help needs a task to compose the config)."""
    return (f"{__doc__.strip()}\n\ntasks: {', '.join(available_tasks())}\n"
            "python -m ttl.finetune task=<name> --help lists every option of that task's config")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.finetune` / `ttl-finetune`); returns the exit status."""
    register_resolvers()
    args = list(sys.argv[1:] if argv is None else argv)
    if {"--help", "-h"} & set(args) and not any(arg.startswith("task=") for arg in args):
        print(usage())
        return 0
    try:
        check_task_argument(args)
    except TTLError as error:
        print(f"ttl.finetune: error: {error}", file=sys.stderr)
        return 2
    return invoke(_hydra_main, args)


if __name__ == "__main__":
    sys.exit(main())
