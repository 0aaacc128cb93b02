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
        # Researchers compare runs by tokens seen, not by steps.
        experiment.define_metric("progress/tokens")
        for prefix in ("train", "val", "perf", "energy"):
            experiment.define_metric(f"{prefix}/*", step_metric="progress/tokens")
        return [logger]
    raise TTLError(f"logger.kind={kind!r}: choose wandb, csv or none")


def finish_wandb() -> None:
    """Close the W&B run if one is open (always, also after errors)."""
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def wandb_step_in_checkpoint(ckpt_path: str | None) -> int | None:
    """W&B's step counter recorded in a Lightning checkpoint by `WandbStep`, if any."""
    if ckpt_path is None:
        return None
    import torch

    state = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("WandbStep") and isinstance(value, dict):
            return value.get("wandb_step")
    return None
