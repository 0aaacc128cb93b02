"""Callbacks the tests add to real `ttl.train` runs (`+callbacks.NAME._target_=tests.probes.X`,
with the repository on PYTHONPATH): independent measurements to check logged figures against,
and a fault to inject on one rank."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import lightning.pytorch as pl
import torch


class StepClock(pl.Callback):
    """Rank 0 writes `{"step": N, "time": host clock}` to `path` after every optimizer update."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step != self._step:
            self._step = trainer.global_step
            if trainer.is_global_zero:
                with open(self.path, "a") as handle:
                    handle.write(json.dumps({"step": self._step, "time": time.perf_counter()}) + "\n")


class NanOnOneRank(pl.Callback):
    """At optimizer step `step`, rank `rank`'s micro-batch gets no labels: its mean loss is 0/0,
    NaN, on that rank only. At the end every rank writes a hash of its weights to `out_dir`."""

    def __init__(self, step: int, rank: int, out_dir: str) -> None:
        self.step, self.rank, self.out_dir = step, rank, Path(out_dir)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            batch["labels"] = torch.full_like(batch["input_ids"], -100)

    def on_train_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        finite = True
        for name, tensor in sorted(pl_module.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            finite = finite and bool(torch.isfinite(tensor).all())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank-{trainer.global_rank}.json").write_text(json.dumps(
            {"step": trainer.global_step, "weights": digest.hexdigest(), "finite": finite,
             "pid": os.getpid()}))
