"""`python -m ttl.card run_dir=runs/quickstart [step=N] [repo_id=user/model] [output=PATH]`:
write the model card (`ttl.card.render`) of step N (default: the latest `step-<N>/`) into that
step directory, or `output`. Config: conf/card.yaml.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from omegaconf import MISSING, DictConfig

from ttl.card.render import write_card
from ttl.cli import hydra_command, require, store


@dataclass
class CardConfig:
    """`python -m ttl.card`: the run, its export and where the card goes."""

    run_dir: str = MISSING
    # The export's step; null = the latest step-<N>/.
    step: int | None = None
    # The Hub repository the card's usage snippets name; null = the export's path.
    repo_id: str | None = None
    # Where to write; null = step-<N>/README.md.
    output: str | None = None


store(CardConfig, "card_schema")


def _card(cfg: DictConfig) -> None:
    require(cfg, "run_dir", "python -m ttl.card run_dir=runs/NAME")
    print(f"wrote {write_card(cfg.run_dir, cfg.step, cfg.repo_id, cfg.output)}")


main = hydra_command("ttl.card", "card", _card)

if __name__ == "__main__":
    sys.exit(main())
