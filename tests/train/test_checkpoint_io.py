"""RecordedCheckpointIO: each checkpoint gets a record after its atomic write, and a resume reads
the record, not the checkpoint (which may be several GB)."""

import json
import os

import pytest
import torch

from ttl.rundir import checkpoint_is_readable, checkpoint_record_path, latest_good_checkpoint
from ttl.train.checkpoint_io import RecordedCheckpointIO
from ttl.train.loggers import wandb_step_in_checkpoint


def state(step: int, wandb_step: int | None = 7) -> dict:
    return {"global_step": step, "state_dict": {"w": torch.randn(64, 64)},
            "callbacks": {"WandbStep": {"wandb_step": wandb_step, "global_step": step}}}


@pytest.fixture
def no_checkpoint_reads(monkeypatch):
    """Any read of a checkpoint's bytes fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the checkpoint itself was read")
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("zipfile.ZipFile", refuse)


def test_a_recorded_checkpoint_resumes_without_reading_it(tmp_path, no_checkpoint_reads):
    run_dir = tmp_path / "run"
    path = run_dir / "checkpoints" / "step-10.ckpt"
    path.parent.mkdir(parents=True)
    RecordedCheckpointIO().save_checkpoint(state(10), path)
    record = json.loads(checkpoint_record_path(path).read_text())
    assert record == {"bytes": path.stat().st_size, "global_step": 10,
                      "wandb": {"wandb_step": 7, "global_step": 10}}
    os.symlink("step-10.ckpt", path.with_name("last.ckpt"))
    assert checkpoint_is_readable(path) and checkpoint_is_readable(path.with_name("last.ckpt"))
    assert latest_good_checkpoint(run_dir).name in ("last.ckpt", "step-10.ckpt")
    assert wandb_step_in_checkpoint(str(path.with_name("last.ckpt")), path.parent) == 7


def test_a_checkpoint_cut_short_after_its_record_is_skipped(tmp_path):
    run_dir = tmp_path / "run"
    older, newer = (run_dir / "checkpoints" / f"step-{n}.ckpt" for n in (10, 20))
    older.parent.mkdir(parents=True)
    io = RecordedCheckpointIO()
    io.save_checkpoint(state(10), older)
    io.save_checkpoint(state(20), newer)
    newer.write_bytes(newer.read_bytes()[:1000])
    assert not checkpoint_is_readable(newer) and checkpoint_is_readable(older)
    assert latest_good_checkpoint(run_dir) == older
    io.remove_checkpoint(older)
    assert not older.exists() and not checkpoint_record_path(older).exists()


def test_a_checkpoint_without_a_record_is_still_checked_in_full(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save(state(5), path)
    assert checkpoint_is_readable(path)
    assert wandb_step_in_checkpoint(str(path), tmp_path) == 7
    path.write_bytes(path.read_bytes()[:500])
    assert not checkpoint_is_readable(path)
