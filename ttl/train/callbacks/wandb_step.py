"""`WandbStep`: record W&B's own step counter for each checkpoint, so a resume can rewind to it.

Lightning writes step checkpoints from `on_train_batch_end`, before that batch's metrics row
and any validation row after it are logged, and a resumed run logs neither again: the step to
resume at is the counter once the batch is done. It is known one hook later and kept in
`wandb_steps.json` beside the checkpoints ({optimizer step: W&B step}); the value in the
checkpoint itself is the fallback for a process killed in between.
"""

from __future__ import annotations

import json

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger

from ttl.rundir import WANDB_STEPS, checkpoint_dir, write_json


def _wandb_run(trainer: pl.Trainer | None):
    loggers = [lg for lg in (trainer.loggers if trainer else []) if isinstance(lg, WandbLogger)]
    return loggers[0].experiment if loggers and trainer.is_global_zero else None


class WandbStep(pl.Callback):
    """Save W&B's step with every checkpoint, and the settled value in the run's
    `checkpoints/wandb_steps.json`."""

    def __init__(self, run_dir: str | None = None) -> None:
        super().__init__()
        self.dirpath = checkpoint_dir(run_dir) if run_dir else None
        self._trainer: pl.Trainer | None = None
        # Optimizer step of a checkpoint whose batch may still log rows.
        self._pending: int | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Remember the trainer, whose loggers hold the W&B run."""
        self._trainer = trainer

    def state_dict(self) -> dict:
        """The W&B step when the checkpoint is written (settled later, see the module doc)."""
        run = _wandb_run(self._trainer)
        if run is None:
            return {"wandb_step": None}
        self._pending = self._trainer.global_step
        return {"wandb_step": run.step, "global_step": self._trainer.global_step}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        """The previous batch has logged everything: settle its checkpoint's W&B step."""
        self._settle(trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Fit is over: the last checkpoint's batch has logged everything."""
        self._settle(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        """A preempted run logs nothing after its last checkpoint."""
        self._settle(trainer)

    def _settle(self, trainer: pl.Trainer) -> None:
        run = _wandb_run(trainer) if self._pending is not None else None  # None nearly every batch
        if run is None or self.dirpath is None:
            return
        path = self.dirpath / WANDB_STEPS
        steps = json.loads(path.read_text()) if path.is_file() else {}
        steps[str(self._pending)] = run.step
        self.dirpath.mkdir(parents=True, exist_ok=True)
        write_json(path, steps)
        self._pending = None

