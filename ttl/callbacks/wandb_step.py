"""`WandbStep`: keep W&B's own step counter in each checkpoint, so a resume can rewind to it."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger


class WandbStep(pl.Callback):
    """Save `wandb.run.step` with every checkpoint (None without a W&B logger)."""

    def __init__(self) -> None:
        super().__init__()
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Remember the trainer, whose loggers hold the W&B run."""
        self._trainer = trainer

    def state_dict(self) -> dict:
        """The W&B step at the moment the checkpoint is written."""
        attached = self._trainer.loggers if self._trainer else []
        loggers = [lg for lg in attached if isinstance(lg, WandbLogger)]
        step = loggers[0].experiment.step if loggers else None
        return {"wandb_step": step}
