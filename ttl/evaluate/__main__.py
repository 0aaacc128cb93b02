"""`python -m ttl.evaluate [harness] key=value ...`: perplexity (ttl.evaluate.config.EvaluateConfig),
or lm-evaluation-harness with `harness` first (HarnessConfig)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from omegaconf import DictConfig

import ttl.evaluate.config  # noqa: F401  (registers the commands' schemas)
from ttl.cli import hydra_command


def _perplexity(cfg: DictConfig) -> None:
    from ttl.evaluate.run import evaluate

    evaluate(cfg)


def _harness(cfg: DictConfig) -> None:
    from ttl.evaluate.harness import run_harness

    run_harness(cfg)


perplexity = hydra_command("ttl.evaluate", "evaluate", _perplexity)
harness = hydra_command("ttl.evaluate harness", "harness", _harness)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.evaluate` / `ttl-evaluate`); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["harness"]:
        return harness(args[1:])
    return perplexity(args)


if __name__ == "__main__":
    sys.exit(main())
