"""Metric loggers from the `logger:` config group: wandb (the default), csv, both, or none."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ttl.cli import build
from ttl.rundir import LOGS, WANDB_STEPS, read_checkpoint_record, wandb_state


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


def wandb_logger(run_dir: str, name: str, hparams: dict[str, Any], project: str = "ttl",
                 entity: str | None = None, mode: str = "auto", group: str | None = None,
                 resume_step: int | None = None):
    """A W&B logger with run id = run name (a re-run resumes the same W&B run), its files in
    `run_dir/wandb/`, `progress/tokens` as every metric's x-axis, `mode` as `wandb_mode`.
    `resume_step`: W&B's step of the checkpoint being resumed; online the run is rewound to it,
    so rows a killed session logged after that checkpoint are replaced, not duplicated."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode(mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    resume = {"resume": "allow"}
    if mode == "online" and resume_step is not None:
        resume = {"resume_from": f"{name}?_step={resume_step}"}
    logger = WandbLogger(project=project, entity=entity, name=name, id=name, save_dir=str(run_dir),
                         mode=mode, group=group, **resume)
    logger.log_hyperparams(hparams)
    experiment = logger.experiment
    if mode == "offline" and resume_step:
        # Offline, W&B cannot tell a resumed run where it stopped: a new session would number
        # its rows from 0 again, and `wandb sync` drops rows whose step goes back. An empty row
        # at the checkpoint's step moves the counter there.
        experiment.log({}, step=resume_step, commit=False)
    # Researchers compare runs by tokens seen, not by steps.
    experiment.define_metric("progress/tokens")
    for prefix in ("train", "val", "perf", "energy"):
        experiment.define_metric(f"{prefix}/*", step_metric="progress/tokens")
    return logger


def csv_logger(run_dir: str, hparams: dict[str, Any]):
    """Lightning's CSV logger: `run_dir/logs/version_<k>/metrics.csv`, one version per session,
    so a resumed run never overwrites earlier metrics."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir=str(run_dir), name=LOGS)
    logger.log_hyperparams(hparams)
    return logger


def build_loggers(logger_cfg: DictConfig, run_dir: str | Path, hparams: dict[str, Any],
                  resume_step: int | None = None) -> list:
    """Every logger of the `logger:` group (none, one, or several: `logger=[csv,wandb]`), handed
    what its signature takes of the run directory, `hparams` and `resume_step` (`ttl.cli.build`)."""
    return [build(node, run_dir=str(run_dir), hparams=hparams, resume_step=resume_step)
            for node in (logger_cfg or {}).values()]


def finish_wandb() -> None:
    """Close the W&B run if one is open (always, also after errors)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def wandb_step_in_checkpoint(ckpt_path: str | None, checkpoint_dir: Path | None = None) -> int | None:
    """The W&B step a run resumed from `ckpt_path` continues at (recorded by `WandbStep`): the
    settled one in `wandb_steps.json` when there is one, else the one saved in the checkpoint."""
    if ckpt_path is None:
        return None
    record = read_checkpoint_record(Path(ckpt_path))
    if record is not None:  # the checkpoint's record: no read of the checkpoint itself
        state = record.get("wandb")
    else:
        state = wandb_state(torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True))
    if not state:
        return None
    saved, step = state.get("wandb_step"), state.get("global_step")
    path = (checkpoint_dir or Path(ckpt_path).parent) / WANDB_STEPS
    if step is None or not path.is_file():
        return saved
    try:
        return int(json.loads(path.read_text()).get(str(step), saved))
    except (ValueError, TypeError):
        return saved
