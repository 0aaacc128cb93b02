"""`python -m ttl.card run_dir=runs/quickstart [step=N] [repo_id=user/model] [output=PATH]`:
write a step's model card; `push_metadata_to=user/model [dry_run=true]` then refreshes the
published card's `model-index` (docs/publishing.md; settings: ttl.card.config.CardConfig).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from ttl.card.config import USAGE, check_push_args
from ttl.card.render import write_card
from ttl.cli import hydra_command, require


def _card(cfg: DictConfig) -> None:
    require(cfg, "run_dir", USAGE)
    check_push_args(cfg)
    repo_id = cfg.repo_id or cfg.push_metadata_to
    path = write_card(cfg.run_dir, cfg.step, repo_id, cfg.output)
    print(f"wrote {path}")
    if cfg.push_metadata_to:
        from huggingface_hub import ModelCard

        from ttl.card.metadata import push_model_index

        # What is pushed is the model-index of the card just written.
        data = ModelCard.load(path).data
        print(push_model_index(cfg.push_metadata_to, data, token=cfg.token, dry_run=cfg.dry_run))


main = hydra_command("ttl.card", "card", _card)

if __name__ == "__main__":
    sys.exit(main())
