"""The run's Lightning checkpoints for resume: `ResumeCheckpoint` every N steps, and
`PreemptionCheckpoint` on SIGTERM (which Lightning raises as `SIGTERMException` after the
current batch). A re-run of the same command resumes from the newest one that loads.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ttl.rundir import checkpoint_dir


class ResumeCheckpoint(ModelCheckpoint):
    """Save `checkpoints/step-<N>.ckpt` every `every_n_steps` steps, keep the `keep` newest, and
    link `last.ckpt` to the newest (not a second copy: 1.95 GB per checkpoint of the 160m model)."""

    def __init__(self, run_dir: str, every_n_steps: int, keep: int = 2) -> None:
        super().__init__(dirpath=checkpoint_dir(run_dir), filename="step-{step}",
                         every_n_train_steps=every_n_steps, save_top_k=keep, monitor="step", mode="max",
                         save_last="link", auto_insert_metric_name=False)


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM, write the run's `checkpoints/last.ckpt` (full state) and remember that it was
    preempted."""

    def __init__(self, run_dir: str) -> None:
        super().__init__()
        self.dirpath = checkpoint_dir(run_dir)
        self.saved_path: Path | None = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        """Save the state reached by the last completed batch."""
        if not isinstance(exception, SIGTERMException):
            return
        path = self.dirpath / "last.ckpt"
        if path.is_symlink():
            # last.ckpt links to the newest step-N.ckpt (ResumeCheckpoint): writing through the
            # link would overwrite that file with a later state.
            path.unlink()
        trainer.save_checkpoint(path)
        self.saved_path = path
