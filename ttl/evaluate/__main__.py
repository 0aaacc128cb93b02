"""`python -m ttl.evaluate [harness] key=value ...`: perplexity (conf/evaluate.yaml), or
lm-evaluation-harness with `harness` first (conf/harness.yaml)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from ttl.cli import invoke, run_command


@hydra.main(config_path="pkg://ttl.conf.commands", config_name="evaluate", version_base="1.3")
def _perplexity(cfg: DictConfig) -> None:
    from ttl.evaluate.run import evaluate

    run_command("ttl.evaluate", lambda: evaluate(cfg))


@hydra.main(config_path="pkg://ttl.conf.commands", config_name="harness", version_base="1.3")
def _harness(cfg: DictConfig) -> None:
    from ttl.evaluate.harness import run_harness

    run_command("ttl.evaluate harness", lambda: run_harness(cfg))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.evaluate` / `ttl-evaluate`); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["harness"]:
        return invoke(_harness, args[1:])
    return invoke(_perplexity, args)


if __name__ == "__main__":
    sys.exit(main())
