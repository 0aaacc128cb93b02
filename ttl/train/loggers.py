"""Metric loggers from the `logger:` config group: wandb (default), csv or none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ttl.errors import TTLError


def wandb_mode(requested: str) -> str:
    """online/offline/disabled; `auto` is online only when W&B credentials are present."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def build_loggers(logger_cfg: DictConfig, run_dir: Path, run_name: str,
                  config: dict[str, Any], wandb_resume_step: int | None = None) -> list:
    """The Lightning loggers of a run; W&B uses run id = run name so re-runs resume it.

    `wandb_resume_step`: W&B's own step counter saved in the checkpoint being resumed. Online,
    the W&B run is rewound to it, so the steps logged after that checkpoint by a killed session
    are replaced rather than duplicated. (Offline runs cannot be rewound locally.)
    """
    kind = logger_cfg.kind
    if kind == "none":
        return []
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        # One version directory per session: a resumed run never overwrites earlier metrics.
        csv = CSVLogger(save_dir=str(run_dir), name="logs")
        csv.log_hyperparams(config)
        return [csv]
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        mode = wandb_mode(logger_cfg.get("mode", "auto"))
        os.environ.setdefault("WANDB_SILENT", "true")
        resume = {"resume": "allow"}
        if mode == "online" and wandb_resume_step is not None:
            resume = {"resume_from": f"{run_name}?_step={wandb_resume_step}"}
        logger = WandbLogger(
            project=logger_cfg.project, entity=logger_cfg.get("entity"), name=run_name,
            id=run_name, save_dir=str(run_dir), mode=mode, group=logger_cfg.get("group"), **resume,
        )
        logger.log_hyperparams(config)
        experiment = logger.experiment
        if mode == "offline" and wandb_resume_step:
            continue_offline_steps(experiment, wandb_resume_step)
        # Researchers compare runs by tokens seen, not by steps.
        experiment.define_metric("progress/tokens")
        for prefix in ("train", "val", "perf", "energy"):
            experiment.define_metric(f"{prefix}/*", step_metric="progress/tokens")
        return [logger]
    raise TTLError(f"logger.kind={kind!r}: choose wandb, csv or none")


def continue_offline_steps(run, step: int) -> None:
    """Make a resumed offline W&B session number its rows from the checkpoint's step.

    Online, W&B tells a resumed run where it stopped (and ttl rewinds it to the checkpoint);
    offline it cannot, so a new session would number its rows from 0 again, and `wandb sync`
    drops rows whose step goes back. An empty row at the checkpoint's step moves the counter
    there: the rows that follow continue the run.
    """
    run.log({}, step=step, commit=False)


def finish_wandb() -> None:
    """Close the W&B run if one is open (always, also after errors)."""
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def wandb_step_in_checkpoint(ckpt_path: str | None, checkpoint_dir: Path | None = None) -> int | None:
    """The W&B step a run resumed from `ckpt_path` continues at (recorded by `WandbStep`)."""
    if ckpt_path is None:
        return None
    import torch

    from ttl.train.callbacks.wandb_step import settled_wandb_step

    state = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("WandbStep") and isinstance(value, dict):
            return settled_wandb_step(value, checkpoint_dir or Path(ckpt_path).parent)
    return None
