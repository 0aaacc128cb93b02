"""What the benchmark scripts share: the machine's description and ttl's training loop timed
step by step (a Lightning Trainer with the CSV logger and progress bar of a real run)."""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class StepStamps(pl.Callback):
    """The clock and the loss at the end of every training batch."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.stamps.append(time.perf_counter())
        self.losses.append(float(outputs["loss"]))


def timed_fit(module: pl.LightningModule, batches, steps: int) -> StepStamps:
    """Train `module` on `batches` for `steps` CPU steps as a real run logs (CSV logger every 10
    steps, the progress bar), without validation or checkpoints; the per-step stamps."""
    stamps = StepStamps()
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, precision="32-true", max_steps=steps,
            limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
            logger=pl.loggers.CSVLogger(run_dir), log_every_n_steps=10,
            callbacks=[stamps, pl.callbacks.TQDMProgressBar(refresh_rate=10)],
            enable_model_summary=False, default_root_dir=run_dir,
        )
        trainer.fit(module, train_dataloaders=batches)
    return stamps
