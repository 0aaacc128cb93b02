"""`ThroughputMonitor`: tokens per second and model-FLOPs utilisation, without device syncs.

Lightning's `ThroughputMonitor` calls `torch.cuda.synchronize()` after every batch to time it,
so the host waits for the GPU to drain each batch instead of queueing the next. This one reads
the host clock from one logging step's optimizer update to the next (whole optimizer steps,
whatever the accumulation; over dozens of steps the GPU work in flight is a small fraction).
What is left out of the interval, and how MFU is counted: docs/reliability.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
import torch

from ttl.model import flops_per_token, matmul_parameters

# Dense bf16 peak FLOP/s from the vendors' datasheets (no sparsity); "H100 PCIe" before "H100".
PEAK_BF16_FLOPS = {"H200": 989.4e12, "H100 PCIe": 756.0e12, "H100": 989.4e12, "A100": 312.0e12}


def peak_flops(device_name: str) -> float | None:
    """Peak bf16 FLOP/s of a device by (a substring of) its name, or None when unknown."""
    return next((value for key, value in PEAK_BF16_FLOPS.items() if key.lower() in device_name.lower()), None)


def mfu(tokens_per_second: float, flops_per_token: float, peak: float) -> float:
    """Model-FLOPs utilisation: achieved model FLOP/s over the device's peak."""
    return tokens_per_second * flops_per_token / peak


class ThroughputMonitor(pl.Callback):
    """Log perf/tokens_per_sec (also on the progress bar), perf/tokens_per_sec_per_device, perf/mfu."""

    def __init__(self, peak_flops: float | None = None) -> None:
        super().__init__()
        self.peak = peak_flops
        self.flops_per_token: int | None = None
        # (host time, optimizer step) at the last logging step (or the start).
        self._last: tuple[float, int] | None = None
        # Seconds left out of the current interval; the pause between batches under way (its
        # start; None inside a batch) and whether it is left out; a span left out inside a batch.
        self._excluded = 0.0
        self._gap_start: float | None = None
        self._gap_excluded = False
        self._span_start: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Work out FLOPs per token and the device's peak once; start the clock."""
        config = pl_module.model.config
        settings = getattr(trainer.datamodule, "settings", None)
        seq_len = settings.seq_len if settings is not None else config.max_position_embeddings
        self.flops_per_token = flops_per_token(matmul_parameters(pl_module.model), config.num_hidden_layers,
                                               config.hidden_size, seq_len)
        if self.peak is None and pl_module.device.type == "cuda":
            self.peak = peak_flops(torch.cuda.get_device_name(pl_module.device))
        now = time.perf_counter()
        self._last = (now, trainer.global_step)
        self._excluded, self._gap_start, self._gap_excluded, self._span_start = 0.0, now, False, None

    def leave_out(self) -> None:
        """Leave what runs now out of the interval: the whole pause between batches, or (inside
        a batch, before this callback's batch-end hook) the rest of the batch's hooks."""
        if self._gap_start is not None:
            self._gap_excluded = True
        elif self._span_start is None:
            self._span_start = time.perf_counter()

    def end_span(self, now: float) -> None:
        """Count out a span left out inside a batch, ending `now`."""
        if self._span_start is not None:
            self._excluded += now - self._span_start
            self._span_start = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A validation pass is not training time."""
        if not trainer.sanity_checking:
            self.leave_out()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict) -> None:
        """Nor is a checkpoint save (Lightning has no hook after the write: the pause goes out whole)."""
        self.leave_out()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        """End the pause since the last batch, counting it out if something else ran in it."""
        if self._gap_start is not None and self._gap_excluded:
            self._excluded += time.perf_counter() - self._gap_start
        self._gap_start, self._gap_excluded = None, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """After the optimizer update of a logging step, log the rate since the previous one."""
        now = time.perf_counter()
        self.end_span(now)
        self._gap_start, self._gap_excluded = now, False
        if self._last is None:
            return
        step = trainer.global_step
        last_time, last_step = self._last
        # With accumulation this hook runs for every micro-batch; the first one that sees a new
        # logging step is the one that completed its optimizer update.
        if step == last_step or step % trainer.log_every_n_steps:
            return
        seconds = now - last_time - self._excluded
        self._last, self._excluded = (now, step), 0.0
        rate = (step - last_step) * pl_module.tokens_per_step / seconds
        per_device = rate / trainer.world_size
        pl_module.log("perf/tokens_per_sec", rate, prog_bar=True)
        pl_module.log("perf/tokens_per_sec_per_device", per_device)
        if self.peak:
            pl_module.log("perf/mfu", mfu(per_device, self.flops_per_token, self.peak))


@contextmanager
def not_training(trainer: pl.Trainer) -> Iterator[None]:
    """Leave the work done in this block (an export, say) out of every ThroughputMonitor's tokens/s."""
    monitors = [c for c in trainer.callbacks if isinstance(c, ThroughputMonitor)]
    for monitor in monitors:
        monitor.leave_out()
    try:
        yield
    finally:
        now = time.perf_counter()
        for monitor in monitors:  # a pause between batches goes out whole, at the next batch
            monitor.end_span(now)
