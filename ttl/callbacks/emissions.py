"""`EmissionsMonitor`: energy (kWh) and emissions (kg CO2eq) of a run with codecarbon.

One offline tracker per machine (local rank 0; per-rank trackers would count the node
several times), writing codecarbon's own emissions.csv into the run directory. Totals of
earlier sessions travel in the Lightning checkpoint, so a resumed run keeps counting.
Logged at logging steps: energy/kwh, energy/kg_co2eq, energy/joules_per_token.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning.pytorch as pl
import torch

log = logging.getLogger(__name__)


class EmissionsMonitor(pl.Callback):
    """Track energy and emissions with codecarbon's OfflineEmissionsTracker (no network)."""

    def __init__(self, output_dir: str, country_iso_code: str = "BRA",
                 measure_power_secs: float = 15.0, enabled: bool = True) -> None:
        super().__init__()
        self.output_dir = Path(output_dir)
        self.country_iso_code = country_iso_code
        self.measure_power_secs = measure_power_secs
        self.enabled = enabled
        self._tracker = None
        # Totals of earlier sessions of this run, restored from the checkpoint.
        self._previous_kwh = 0.0
        self._previous_kg = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Start the machine's tracker on local rank 0 (once per fit)."""
        if stage != "fit" or not self.enabled or self._tracker is not None:
            return
        if trainer.local_rank != 0:
            return
        os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
        from codecarbon import OfflineEmissionsTracker

        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            output_dir=str(self.output_dir),
            measure_power_secs=self.measure_power_secs,
            log_level="error",
            save_to_file=True,
            tracking_mode="machine",
            allow_multiple_runs=True,
            project_name="ttl",
        )
        self._tracker.start()

    def _session_totals(self) -> tuple[float, float]:
        if self._tracker is None:
            return 0.0, 0.0
        # Measure now rather than wait for codecarbon's next scheduled sample.
        self._tracker._measure_power_and_energy_if_stale()
        data = self._tracker._prepare_emissions_data()
        if data is None:
            return 0.0, 0.0
        return float(data.energy_consumed), float(data.emissions)

    def totals(self, trainer: pl.Trainer | None = None) -> tuple[float, float]:
        """(kWh, kg CO2eq) of the whole run so far, summed over machines."""
        kwh, kg = self._session_totals()
        if trainer is not None and trainer.world_size > 1:
            # Only each machine's local rank 0 measures; the others add zeros.
            summed = trainer.strategy.reduce(
                torch.tensor([kwh, kg], dtype=torch.float64, device=trainer.strategy.root_device),
                reduce_op="sum",
            )
            kwh, kg = (float(v) for v in summed.tolist())
        return self._previous_kwh + kwh, self._previous_kg + kg

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Log totals on logging steps (a host-side read: no device synchronisation)."""
        if not self.enabled or not trainer._logger_connector.should_update_logs:
            return
        kwh, kg = self.totals(trainer)
        tokens = getattr(pl_module, "tokens_seen", 0)
        pl_module.log("energy/kwh", kwh)
        pl_module.log("energy/kg_co2eq", kg)
        if tokens:
            pl_module.log("energy/joules_per_token", kwh * 3.6e6 / tokens)

    def flush(self) -> None:
        """Write a row to codecarbon's emissions.csv (at checkpoints)."""
        if self._tracker is not None:
            self._tracker.flush()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Stop the tracker and fold its totals into the run's, even after an error."""
        if stage != "fit" or self._tracker is None:
            return
        kwh, kg = self._session_totals()
        self._tracker.stop()
        self._tracker = None
        self._previous_kwh += kwh
        self._previous_kg += kg

    def state_dict(self) -> dict:
        """Run totals so far, saved in the Lightning checkpoint."""
        kwh, kg = self._previous_kwh, self._previous_kg
        session_kwh, session_kg = self._session_totals()
        return {"energy_kwh": kwh + session_kwh, "emissions_kg": kg + session_kg}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from the totals of the sessions before this resume."""
        self._previous_kwh = float(state_dict.get("energy_kwh", 0.0))
        self._previous_kg = float(state_dict.get("emissions_kg", 0.0))
