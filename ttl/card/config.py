"""The settings of `python -m ttl.card` (`CardConfig`, conf/commands/card.yaml) and the checks
that types cannot express."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING, DictConfig

from ttl.card.render import find_step_dir
from ttl.cli import store
from ttl.errors import TTLError
from ttl.rundir import looks_like_hub_id, step_dirs, step_of


@dataclass
class CardConfig:
    """`python -m ttl.card`: the run, its export, where the card goes, and the Hub card to refresh."""

    run_dir: str = MISSING
    # The export's step; null = the latest step-<N>/.
    step: int | None = None
    # The Hub repository the card's usage snippets name; null = push_metadata_to, else the export's path.
    repo_id: str | None = None
    # Where to write; null = step-<N>/README.md.
    output: str | None = None
    # A Hub model repository (user/model) whose published card on `main` gets this card's
    # model-index (huggingface_hub.metadata_update, overwrite=True); null = write the card only.
    push_metadata_to: str | None = None
    # With push_metadata_to: read the published card, print what the push would change, push nothing.
    dry_run: bool = False
    # A Hub token with write access; null = HF_TOKEN or the token `hf auth login` saved.
    token: str | None = None


store(CardConfig, "card_schema")

USAGE = "python -m ttl.card run_dir=runs/NAME"


def check_push_args(cfg: DictConfig) -> None:
    """Refuse push settings that cannot work before anything is written: a repository that is
    not `owner/name`, `dry_run` without a repository, or a step other than the latest (the card
    on `main` is the latest export's, as `python -m ttl.publish` pushes it)."""
    repo = cfg.push_metadata_to
    if repo is None:
        if cfg.dry_run:
            raise TTLError("dry_run=true previews a push: give push_metadata_to=user/model too")
        return
    if not looks_like_hub_id(str(repo)):
        raise TTLError(f"push_metadata_to={repo!r}: expected <user or organisation>/<name>")
    latest = find_step_dir(cfg.run_dir, None)
    if cfg.step is not None and cfg.step != step_of(latest):
        steps = ", ".join(str(step_of(p)) for p in step_dirs(cfg.run_dir))
        raise TTLError(f"step={cfg.step}: push_metadata_to refreshes the card on main, which describes "
                       f"the latest export ({latest.name}; steps: {steps}); leave step out")
