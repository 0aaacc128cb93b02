"""`StepProgressBar`: Lightning's TQDM bar, counting optimizer steps against max_steps.

Lightning's bar counts micro-batches against a total (for ttl's endless stream) of `max_steps`,
in optimizer steps: under gradient accumulation it read 20/20 half-way through a 20-step run.
This one counts `trainer.global_step`, from the step a resumed run starts at.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """A TQDM progress bar over optimizer steps (`refresh_rate` in optimizer steps too)."""

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        """Total: max_steps (or unknown); position: the step training starts from."""
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        bar.n = bar.initial = trainer.global_step
        bar.refresh()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Move the bar when an optimizer step has completed (not at every micro-batch)."""
        bar = self.train_progress_bar
        step = trainer.global_step
        if bar is None or not self.is_enabled or step == bar.n:
            return
        if step % self.refresh_rate == 0 or step == bar.total:
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()
