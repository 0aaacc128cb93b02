"""`PreemptionCheckpoint`: save a resumable checkpoint when the job is told to stop.

Lightning turns SIGTERM into a `SIGTERMException` after the current batch; this callback then
writes `checkpoints/last.ckpt` (full state), which re-running the same command resumes from.
SLURM's pre-kill signal is Lightning's own SLURM environment (docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ttl.rundir import checkpoint_dir


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM, write the run's `checkpoints/last.ckpt` and remember that it was preempted."""

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
