"""`HFCheckpoint`: export `step-<N>/` Hugging Face checkpoints at step intervals and at the end,
each written whole (`ttl.rundir.write_dir`); what one holds: docs/reliability.md."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from ttl.generate import export_generation_config
from ttl.rundir import (
    TRAINER_STATE,
    read_trainer_state,
    remove_stale_temporaries,
    saved_config_hash,
    step_dir_name,
    write_dir,
    write_json,
)
from ttl.train.callbacks.emissions import EmissionsMonitor
from ttl.train.callbacks.throughput import not_training
from ttl.train.sharding import is_sharded, unsharded_copy


def _significant(value: float) -> float:
    """`value` to 10 significant digits (energies span kWh of a GPU run to nWh of a test)."""
    return float(f"{value:.10g}")


def _val_ppl(trainer: pl.Trainer, pl_module) -> float | None:
    """The validation perplexity of these weights: measured at this very step, else None
    (an export never carries a perplexity measured on other weights)."""
    val_ppl = dict(getattr(pl_module, "val_history", [])).get(trainer.global_step)
    return None if val_ppl is None or not math.isfinite(val_ppl) else round(float(val_ppl), 4)


def _energy(trainer: pl.Trainer, emissions: EmissionsMonitor | None) -> dict:
    """Energy and emissions of the run so far, summed over machines, with this session's share
    of each machine. Collective under DDP/FSDP: every rank calls it."""
    if emissions is None or not emissions.enabled:
        return {"energy_kwh": None, "emissions_kg_co2eq": None}
    emissions.flush()  # a row in each machine's CSV at this checkpoint
    machines = emissions.machine_totals(trainer)
    kwh, kg = emissions.run_totals(machines)
    return {"energy_kwh": _significant(kwh), "emissions_kg_co2eq": _significant(kg),
            "session_energy_kwh_by_machine": [_significant(m[0]) for m in machines]}


class HFCheckpoint(pl.Callback):
    """Save `run_dir/step-<N>/` every `every_n_steps` optimizer steps and when training ends."""

    def __init__(self, run_dir: str, every_n_steps: int, export_on_train_end: bool = True,
                 tokenizer=None, spawned: bool = False, emissions: EmissionsMonitor | None = None) -> None:
        super().__init__()
        self.emissions = emissions  # None: energy not tracked
        self.dirpath = Path(run_dir)
        self.every_n_steps = every_n_steps
        # ttl's training flow turns this off: it validates the final weights, then exports them.
        # Spawned ranks (ddp_spawn; `spawned` from ttl.train.pretrain) export at the end
        # regardless: the launching process never holds the trained weights.
        self.export_on_train_end = export_on_train_end
        self._spawned = spawned
        # Saved with each export; default: the DataModule's, taken in setup.
        self.tokenizer = tokenizer
        self.config_hash: str | None = None
        self._start_time = time.monotonic()
        self._last_exported = -1
        # Wall time of earlier sessions of this run, restored from the checkpoint.
        self._previous_wall_s = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Take what exports need from the run: its tokenizer and its saved config's hash."""
        if self.tokenizer is None:
            self.tokenizer = getattr(trainer.datamodule, "tokenizer", None)
        self.config_hash = saved_config_hash(self.dirpath)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the wall clock of this session; remove temporaries of a crashed export."""
        self._start_time = time.monotonic()
        if trainer.is_global_zero:
            remove_stale_temporaries(self.dirpath)

    def wall_time_s(self) -> float:
        """Training wall time of this run over all its sessions."""
        return self._previous_wall_s + time.monotonic() - self._start_time

    def state_dict(self) -> dict:
        """Saved in the Lightning checkpoint: the wall time so far."""
        return {"wall_time_s": self.wall_time_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue the wall clock of the sessions before this resume."""
        self._previous_wall_s = float(state_dict.get("wall_time_s", 0.0))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Export when an optimizer step lands on the interval."""
        step = trainer.global_step
        # With gradient accumulation this hook runs per micro-batch: the first call that sees
        # a new step is the one right after its optimizer update.
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_exported:
            with not_training(trainer):  # left out of perf/tokens_per_sec
                self.export(trainer, pl_module)
            self._last_exported = step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the perplexity of weights exported at this very step: Lightning validates
        after the batch-end hooks, so the export was written first; its state file is updated."""
        step = trainer.global_step
        if not trainer.is_global_zero or trainer.sanity_checking or step != self._last_exported:
            return
        step_dir = self.dirpath / step_dir_name(step)
        state = read_trainer_state(step_dir)
        val_ppl = _val_ppl(trainer, pl_module)
        if state and val_ppl is not None:
            write_json(step_dir / TRAINER_STATE, {**state, "val_ppl": val_ppl})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Export the final weights (unless this step was just exported)."""
        if (self.export_on_train_end or self._spawned) and trainer.global_step != self._last_exported:
            self.export(trainer, pl_module)

    def export(self, trainer: pl.Trainer, pl_module) -> Path | None:
        """Write `step-<N>/` atomically on rank 0 and return its path (None on other ranks). Every
        rank calls it: under FSDP gathering the weights onto rank 0 takes all ranks."""
        if hasattr(pl_module, "check_finite"):
            pl_module.check_finite()
        model = pl_module.model
        if is_sharded(model):
            model = unsharded_copy(model)
        energy = _energy(trainer, self.emissions)  # collective: before the ranks part ways
        if not trainer.is_global_zero:
            return None
        model.generation_config = export_generation_config(model.config)
        state = {
            "step": trainer.global_step,
            "tokens": trainer.global_step * pl_module.tokens_per_step,
            "tokens_per_step": pl_module.tokens_per_step,
            "val_ppl": _val_ppl(trainer, pl_module),
            **energy,
            "wall_time_s": round(self.wall_time_s(), 2),
            "config_hash": self.config_hash,
            "hardware": torch.cuda.get_device_name(pl_module.device) if pl_module.device.type == "cuda"
            else f"CPU ({os.cpu_count()} cores)",
        }

        def fill(tmp: Path) -> None:
            model.save_pretrained(tmp, safe_serialization=True)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(tmp)
            write_json(tmp / TRAINER_STATE, state)

        return write_dir(self.dirpath / step_dir_name(trainer.global_step), fill)
