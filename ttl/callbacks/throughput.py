"""`ThroughputMonitor`: tokens per second and model-FLOPs utilisation, without device syncs.

Tokens/s is measured on the host clock between two logging steps: over dozens of steps the
queue of GPU work in flight is a small fraction, so no synchronisation is needed. MFU needs the
device's peak bf16 FLOP/s: from `ttl.perf`'s table for A100/H100/H200, or `peak_flops` given
explicitly (the only way to get it on a CPU).
"""

from __future__ import annotations

import time

import lightning.pytorch as pl
import torch

from ttl.model import flops_per_token
from ttl.perf import mfu, peak_flops


class ThroughputMonitor(pl.Callback):
    """Log perf/tokens_per_sec (also on the progress bar), perf/mfu and progress/tokens."""

    def __init__(self, peak_flops: float | None = None) -> None:
        super().__init__()
        self.peak = peak_flops
        self._flops_per_token: int | None = None
        self._last: tuple[float, int] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Work out FLOPs per token and the device's peak once."""
        config = pl_module.model.config
        n_params = sum(p.numel() for p in pl_module.model.parameters())
        seq_len = getattr(trainer.datamodule, "settings", None)
        seq_len = seq_len.seq_len if seq_len is not None else config.max_position_embeddings
        self._flops_per_token = flops_per_token(n_params, config.num_hidden_layers,
                                                config.hidden_size, seq_len)
        if self.peak is None and pl_module.device.type == "cuda":
            self.peak = peak_flops(torch.cuda.get_device_name(pl_module.device))
        self._last = (time.perf_counter(), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """On logging steps, log the rate since the previous logging step."""
        if self._last is None or not trainer._logger_connector.should_update_logs:
            return
        now, step = time.perf_counter(), trainer.global_step
        last_time, last_step = self._last
        if step <= last_step or now <= last_time:
            return
        rate = (step - last_step) * pl_module.tokens_per_step / (now - last_time)
        self._last = (now, step)
        pl_module.log("perf/tokens_per_sec", rate, prog_bar=True)
        if self.peak:
            pl_module.log("perf/mfu", mfu(rate, self._flops_per_token, self.peak))
