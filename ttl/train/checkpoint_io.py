"""`RecordedCheckpointIO`: Lightning's checkpoint writer, plus a small record of each checkpoint.

The record written right after Lightning renames a checkpoint into place
(`ttl.rundir.write_checkpoint_record`) is what a resume reads instead of the checkpoint itself
(several GB for the 460m model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ttl.rundir import checkpoint_record_path, write_checkpoint_record


class RecordedCheckpointIO(TorchCheckpointIO):
    """Save (atomically, as Lightning does), then record; remove a checkpoint with its record."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        """Write the checkpoint, then its record beside it."""
        super().save_checkpoint(checkpoint, path, storage_options)
        write_checkpoint_record(Path(path), checkpoint)

    def remove_checkpoint(self, path) -> None:
        """Delete the checkpoint and its record."""
        record = checkpoint_record_path(Path(path))
        super().remove_checkpoint(path)
        record.unlink(missing_ok=True)
