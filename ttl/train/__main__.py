"""`python -m ttl.train [overrides]`: compose the config and train (`ttl.train.pretrain`).

Examples:
    python -m ttl.train experiment=quickstart          # tiny model on CPU, minutes
    python -m ttl.train model=160m trainer=a100         # TeenyTinyLlama-160m's recipe
    python -m ttl.train model=460m dry_run=true         # print the 460m plan and exit
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

import ttl.train.config  # noqa: F401  (registers the config's schemas)
from ttl.cli import invoke, register_resolvers
from ttl.errors import TTLError
from ttl.train.pretrain import Preempted, run


@hydra.main(config_path="pkg://ttl.conf", config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> dict | float | None:
    try:
        result = run(cfg)
    except TTLError as error:
        print(f"ttl.train: error: {error}", file=sys.stderr)
        sys.exit(2)
    except Preempted as stop:
        print(stop)
        sys.exit(143)
    # Optuna's sweeper needs the one figure it optimises; other sweeps get the dict.
    return result.get(cfg.optimized_metric) if cfg.optimized_metric else result


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.train` / `ttl-train`); returns the exit status."""
    register_resolvers()
    return invoke(_hydra_main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
