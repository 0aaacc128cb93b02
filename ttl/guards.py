"""Run-directory guards: one process per run, and choosing a checkpoint that actually loads."""

from __future__ import annotations

import fcntl
import logging
import os
import zipfile
from pathlib import Path

import torch

from ttl.errors import TTLError

log = logging.getLogger(__name__)


def is_primary_process() -> bool:
    """True on the process that owns the run directory (global rank 0 of a launched job)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "0") != "0":
            return False
    return True


class RunLock:
    """An exclusive lock on `run_dir/.lock`, held for the life of the process.

    A second `ttl.train` started on the same run directory would interleave checkpoints and
    logs with the first; it is refused instead. The lock disappears with the process, even
    after SIGKILL, so a crashed run never blocks its own resume.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._handle = None

    def acquire(self) -> RunLock:
        """Take the lock or raise TTLError naming the process that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")
        except OSError as error:
            raise TTLError(f"run directory {self.path.parent} is not writable ({error.strerror}); "
                           "set paths.runs_dir to a writable place") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise TTLError(
                f"run directory {self.path.parent} is in use by another process (pid {owner}); "
                "wait for it to finish, or choose another run_name"
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Give the lock back (also happens when the process ends)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def checkpoint_is_readable(path: Path) -> bool:
    """True when `path` is a complete torch checkpoint (zip CRCs checked, structure loads)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                return False
        torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return True
    except Exception:
        return False


def resume_candidates(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest first: last.ckpt, step-N.ckpt and SLURM's hpc_ckpt_N.ckpt."""
    found = list((run_dir / "checkpoints").glob("*.ckpt")) + list(run_dir.glob("hpc_ckpt_*.ckpt"))
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name == "last.ckpt"), reverse=True)


def latest_good_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that loads; damaged ones are skipped with a warning."""
    for path in resume_candidates(run_dir):
        if checkpoint_is_readable(path):
            return path
        log.warning("checkpoint %s is truncated or corrupt; falling back to an older one", path)
        print(f"warning: checkpoint {path} is truncated or corrupt; trying an older one")
    return None
