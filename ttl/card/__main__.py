"""`python -m ttl.card run_dir=runs/quickstart [step=N] [repo_id=user/model] [output=PATH]`:
write the model card (`ttl.card.render`) of step N (default: the latest `step-<N>/`) into that
step directory, or `output`. Config: conf/card.yaml.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import hydra
from omegaconf import MISSING, DictConfig

from ttl.card.render import write_card
from ttl.cli import invoke, require, run_command, typed


@dataclass
class CardArgs:
    """The types of conf/card.yaml's keys (its values are the defaults)."""

    run_dir: str = MISSING
    step: int | None = MISSING
    repo_id: str | None = MISSING
    output: str | None = MISSING


def _card(cfg: DictConfig) -> None:
    cfg = typed(cfg, CardArgs)
    require(cfg, "run_dir", "python -m ttl.card run_dir=runs/NAME")
    print(f"wrote {write_card(cfg.run_dir, cfg.step, cfg.repo_id, cfg.output)}")


@hydra.main(config_path="pkg://ttl.conf.commands", config_name="card", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run_command("ttl.card", lambda: _card(cfg))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.card` / `ttl-card`); returns the exit status."""
    return invoke(_hydra_main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
