"""`python -m ttl.finetune task=<name> checkpoint=<dir or Hub id> [overrides]`.

Examples:
    python -m ttl.finetune task=hatebr checkpoint=runs/quickstart/step-150
    python -m ttl.finetune task=assin2 checkpoint=nicholasKluge/TeenyTinyLlama-160m trainer=a100
    python -m ttl.finetune task=chat checkpoint=runs/quickstart/step-150 data.path=conversations.jsonl
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from ttl.cli import invoke, register_resolvers
from ttl.errors import TTLError
from ttl.finetune.config import available_tasks, check_task_argument  # registers the schemas too
from ttl.finetune.run import finetune


@hydra.main(config_path="pkg://ttl.conf.finetune", config_name="finetune", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> dict | None:
    try:
        return finetune(cfg)  # a sweep's summary reads the returned results
    except TTLError as error:
        print(f"ttl.finetune: error: {error}", file=sys.stderr)
        sys.exit(2)


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
