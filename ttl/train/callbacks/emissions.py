"""`EmissionsMonitor`: energy (kWh) and emissions (kg CO2eq) of a run with codecarbon.

One offline tracker per machine (local rank 0: per-rank trackers would count a machine several
times). The run's totals are summed over machines by a collective every rank takes at the same
points (logging steps, exports, checkpoints).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import lightning.pytorch as pl
import torch

from ttl.lightning_api import is_logging_step
from ttl.rundir import emissions_file


@functools.cache
def _locked_tracker_class():
    """codecarbon's OfflineEmissionsTracker with its measurements serialised by a lock: it measures
    from a background thread, and a reading must never see half an update."""
    from codecarbon import OfflineEmissionsTracker

    class LockedTracker(OfflineEmissionsTracker):
        def __init__(self, *args, **kwargs) -> None:
            self._ttl_lock = threading.RLock()
            super().__init__(*args, **kwargs)

        def _measure_power_and_energy(self, *args, **kwargs):
            # Runs on codecarbon's sampling thread and inside flush/stop.
            with self._ttl_lock:
                return super()._measure_power_and_energy(*args, **kwargs)

        def flush(self):
            with self._ttl_lock:
                return super().flush()

        def stop(self):
            with self._ttl_lock:
                return super().stop()

        def totals(self) -> tuple[float, float]:
            """(kWh, kg CO2eq) of this tracker so far, measured now."""
            with self._ttl_lock:
                self._measure_power_and_energy_if_stale()
                data = self._prepare_emissions_data()
            return (0.0, 0.0) if data is None else (float(data.energy_consumed), float(data.emissions))

    return LockedTracker


class EmissionsMonitor(pl.Callback):
    """Track energy and emissions with codecarbon's OfflineEmissionsTracker (no network)."""

    def __init__(self, run_dir: str, country_iso_code: str = "BRA", measure_power_secs: float = 15.0,
                 enabled: bool = True, geographical_location: str | None = "Brazil",
                 hardware_used: str | None = None) -> None:
        super().__init__()
        # The country sets the carbon intensity of the electricity. geographical_location and
        # hardware_used (null: the device's name) are read from the run's config by the model
        # card's co2_eq_emissions block.
        self.output_dir = Path(run_dir)
        self.country_iso_code = country_iso_code
        self.measure_power_secs = measure_power_secs
        self.enabled = enabled
        self._tracker = None
        self._trainer: pl.Trainer | None = None
        # Totals of earlier sessions of this run (all machines), restored from the checkpoint.
        self._previous_kwh = 0.0
        self._previous_kg = 0.0
        # This session's (kWh, kg) per machine once its trackers stopped (None while they run).
        self._closed: list[tuple[float, float]] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Start the machine's tracker on local rank 0 (once per fit)."""
        self._trainer = trainer
        if stage != "fit" or not self.enabled or self._tracker is not None or trainer.local_rank != 0:
            return
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._tracker = _locked_tracker_class()(
            country_iso_code=self.country_iso_code,
            output_dir=str(self.output_dir),
            output_file=emissions_file(trainer.node_rank),
            measure_power_secs=self.measure_power_secs,
            log_level="error",
            save_to_file=True,
            tracking_mode="machine",
            allow_multiple_runs=True,
            project_name="ttl",
        )
        self._tracker.start()

    def machine_totals(self, trainer: pl.Trainer | None = None) -> list[tuple[float, float]]:
        """(kWh, kg) of this session on each machine that tracks, in rank order. Collective
        under DDP/FSDP while the trackers run: every rank must call it."""
        if self._closed is not None:
            return list(self._closed)
        tracks = self._tracker is not None
        mine = self._tracker.totals() if tracks else (0.0, 0.0)
        if (trainer is None or trainer.world_size == 1 or not torch.distributed.is_available()
                or not torch.distributed.is_initialized()):
            return [mine] if tracks else []
        local = torch.tensor([*mine, float(tracks)], dtype=torch.float64, device=trainer.strategy.root_device)
        rows = trainer.strategy.all_gather(local).reshape(-1, 3).cpu().tolist()
        return [(kwh, kg) for kwh, kg, tracking in rows if tracking]

    def totals(self, trainer: pl.Trainer | None = None) -> tuple[float, float]:
        """(kWh, kg CO2eq) of the whole run so far, summed over machines (collective, as
        `machine_totals`)."""
        return self.run_totals(self.machine_totals(trainer))

    def run_totals(self, machines: list[tuple[float, float]]) -> tuple[float, float]:
        """Earlier sessions' totals plus this session's `machines` (as `machine_totals` gives)."""
        return (self._previous_kwh + sum(m[0] for m in machines),
                self._previous_kg + sum(m[1] for m in machines))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Log totals on logging steps (a host-side read: no device synchronisation)."""
        if not self.enabled or not is_logging_step(trainer):
            return
        kwh, kg = self.totals(trainer)
        tokens = getattr(pl_module, "tokens_seen", 0)
        pl_module.log("energy/kwh", kwh)
        pl_module.log("energy/kg_co2eq", kg)
        if tokens:
            pl_module.log("energy/joules_per_token", kwh * 3.6e6 / tokens)

    def flush(self) -> None:
        """Write a row to this machine's CSV (at exports)."""
        if self._tracker is not None:
            self._tracker.flush()

    def _close(self, machines: list[tuple[float, float]]) -> None:
        """Stop this machine's tracker (it writes its last row) and keep the session's totals."""
        if self._tracker is not None:
            self._tracker.stop()
            self._tracker = None
        self._closed = machines

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Training ended on every rank: record each machine's session (the final export, after
        this, reads it), then stop the trackers."""
        if self.enabled:
            self._close(self.machine_totals(trainer))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Stop a tracker still running after a failure (no collective: other ranks may be gone);
        this machine's session is kept in memory, while saved checkpoints hold all machines'."""
        if stage == "fit" and self._tracker is not None:
            self._close([self._tracker.totals()])

    def state_dict(self) -> dict:
        """Run totals so far over every machine, saved in the Lightning checkpoint (collective:
        Lightning builds a checkpoint on every rank)."""
        kwh, kg = self.totals(self._trainer)
        return {"energy_kwh": kwh, "emissions_kg": kg}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from the totals of the sessions before this resume."""
        self._previous_kwh = float(state_dict.get("energy_kwh", 0.0))
        self._previous_kg = float(state_dict.get("emissions_kg", 0.0))
