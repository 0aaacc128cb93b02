"""The private parts of Lightning that ttl reads, in one place: Lightning 2.6 has no public way to
ask whether a micro-batch ends an optimizer step or whether a step is a logging step, so they are
read from the loop's own state; tests/test_lightning_api.py fails by name when a release moves them.
"""

from __future__ import annotations

import logging
import warnings

import lightning.pytorch as pl

# Silenced at their source on import (ttl's trainers import this module): Lightning's tip to install
# litlogger and torch's `LeafSpec` FutureWarning raised from Lightning's own _pytree.py.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage())
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                        category=FutureWarning)


def ends_optimizer_step(trainer: pl.Trainer) -> bool:
    """True when the micro-batch in progress is the last of its optimizer step (Lightning's
    training epoch loop: not `_should_accumulate()`)."""
    return not trainer.fit_loop.epoch_loop._should_accumulate()


def is_logging_step(trainer: pl.Trainer) -> bool:
    """True when Lightning will hand this step's logged values to the loggers (its logger
    connector's `should_update_logs`: every `log_every_n_steps` optimizer steps, and at the end)."""
    return trainer._logger_connector.should_update_logs


def batches_processed(trainer: pl.Trainer) -> int:
    """Training batches processed over all epochs (the data position a checkpoint records)."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed)
