"""`python -m ttl.evaluate [harness] key=value ...`: perplexity (ttl.evaluate.config.EvaluateConfig),
or lm-evaluation-harness with `harness` first (HarnessConfig)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ttl.cli import hydra_command
from ttl.evaluate.harness import run_harness
from ttl.evaluate.run import evaluate

perplexity = hydra_command("ttl.evaluate", "evaluate", evaluate)
harness = hydra_command("ttl.evaluate harness", "harness", run_harness)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.evaluate` / `ttl-evaluate`); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["harness"]:
        return harness(args[1:])
    return perplexity(args)


if __name__ == "__main__":
    sys.exit(main())
