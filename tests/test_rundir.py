"""ttl.rundir: the run directory's layout, atomic writes, the saved config, Hub ids, and the
guards of a run: its lock, damaged checkpoints, NaN/Inf losses, unwritable directories."""


import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from ttl.errors import TTLError
from ttl.rundir import (
    FileLock,
    RunLock,
    checkpoint_is_readable,
    config_hash,
    latest_good_checkpoint,
    load_config,
    looks_like_hub_id,
    read_states,
    save_config,
    saved_config_hash,
    step_dirs,
    write_dir,
    write_json,
)

from .conftest import OFFLINE_ENV, ROOT, run_cli


def test_write_json_replaces_the_file_whole(tmp_path):
    path = write_json(tmp_path / "state.json", {"step": 1, "tokens": "ç"})
    write_json(path, {"step": 2})
    assert json.loads(path.read_text()) == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_dir_leaves_the_old_directory_when_filling_fails(tmp_path):
    write_dir(tmp_path / "step-10", lambda tmp: (tmp.mkdir(), (tmp / "a").write_text("old")))

    def broken(tmp):
        tmp.mkdir()
        (tmp / "a").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dir(tmp_path / "step-10", broken)
    assert (tmp_path / "step-10" / "a").read_text() == "old"


def test_step_dirs_are_the_loadable_exports_in_numeric_order(tmp_path):
    for name in ("step-100", "step-20", "step-3", "step-7", ".tmp-step-5-123", "step-x"):
        (tmp_path / name).mkdir()
    for name in ("step-100", "step-20", "step-3", ".tmp-step-5-123"):
        (tmp_path / name / "config.json").write_text("{}")
        write_json(tmp_path / name / "trainer_state.json", {"step": name})
    assert [p.name for p in step_dirs(tmp_path)] == ["step-3", "step-20", "step-100"]
    assert [s["step"] for s in read_states(tmp_path)] == ["step-3", "step-20", "step-100"]


@pytest.mark.parametrize("value, expected", [("nicholasKluge/Pt-Corpus-Instruct", True), ("runs/x", True),
                                             ("./runs/x", False), ("/data/x", False), ("~/x", False),
                                             ("a/b/c", False), ("a/", False), ("corpus", False)])
def test_hub_ids_are_owner_slash_name(value, expected):
    assert looks_like_hub_id(value) is expected


def test_each_session_saves_its_config_and_the_hash_ignores_resume(tmp_path):
    cfg = OmegaConf.create({"seed": 1, "resume": "auto", "dry_run": False, "model": {"name": "tiny"}})
    save_config(cfg, tmp_path)
    cfg.resume = "never"
    save_config(cfg, tmp_path)
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "configs" / "session-2.yaml").is_file()
    assert saved_config_hash(tmp_path) == config_hash(cfg)
    assert config_hash(cfg) == config_hash(OmegaConf.merge(cfg, {"resume": "x"}))
    assert config_hash(cfg) != config_hash(OmegaConf.merge(cfg, {"seed": 2}))
    (tmp_path / "step-5").mkdir()
    assert load_config(tmp_path / "step-5").model.name == "tiny" and load_config(tmp_path.parent) is None


def test_an_unwritable_run_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TTLError, match="is not writable .*set paths.runs_dir"):
        save_config(OmegaConf.create({}), blocker / "run")


QUICK = ["-m", "ttl.train", "experiment=quickstart", "logger=none", "callbacks.emissions.enabled=false"]


def test_second_lock_on_a_run_directory_is_refused(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(TTLError, match=r"in use by another process \(pid \d+\)"):
        RunLock(tmp_path).acquire()
    first.release()
    RunLock(tmp_path).acquire().release()  # free again once released


def test_a_waiting_lock_waits_for_its_holder_and_names_it(tmp_path, capsys):
    # The data cache's lock is the run directory's FileLock that waits (waiting=...).
    path = tmp_path / "set.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from ttl.rundir import FileLock; "
        f"lock = FileLock({str(path)!r}).acquire(); print('held', flush=True); time.sleep(1.5)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with FileLock(path, waiting="waiting for pid {pid}"):
            waited = time.monotonic() - start
            assert path.read_text() == str(os.getpid())  # the new holder's pid
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5
    assert capsys.readouterr().out.strip() == f"waiting for pid {holder.pid}"


def test_a_command_that_starts_over_replaces_its_config(tmp_path):
    save_config(OmegaConf.create({"lr": 1}), tmp_path, replace=True)
    save_config(OmegaConf.create({"lr": 2}), tmp_path, replace=True)
    assert OmegaConf.load(tmp_path / "config.yaml").lr == 2
    assert not (tmp_path / "configs").exists()  # no session history: it does not resume


def test_latest_good_checkpoint_skips_truncated_files(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    torch.save({"global_step": 20}, ckpts / "step-20.ckpt")
    time.sleep(0.01)
    torch.save({"global_step": 30}, ckpts / "last.ckpt")
    data = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "last.ckpt").write_bytes(data[: len(data) // 2])
    assert not checkpoint_is_readable(ckpts / "last.ckpt")
    assert latest_good_checkpoint(tmp_path) == ckpts / "step-20.ckpt"


@pytest.mark.slow
def test_second_process_on_the_same_run_refuses(tmp_path, shared_cache):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    lock = RunLock(tmp_path / "runs" / "quickstart").acquire()
    try:
        result = run_cli(QUICK, tmp_path, env)
    finally:
        lock.release()
    assert result.returncode == 2 and "is in use by another process" in result.stderr


@pytest.mark.slow
def test_unwritable_output_directory_is_one_clear_line(tmp_path, shared_cache):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli([*QUICK, f"paths.runs_dir={blocker}/runs"], tmp_path,
                     {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ttl.train: error: run directory {blocker}/runs/quickstart is not writable (Not a directory); "
        "set paths.runs_dir to a writable place"]


@pytest.mark.slow
def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, shared_cache):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    args = [*QUICK, "optimizer.lr=1e12", "scheduler=constant", "model.recipe.checkpoint_every_n_steps=1",
            "trainer.max_steps=20"]
    result = run_cli(args, tmp_path, env)
    assert result.returncode == 2 and "non-finite loss (NaN or Inf) at step 1" in result.stderr
    ckpts = tmp_path / "runs" / "quickstart" / "checkpoints"
    state = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 1
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


@pytest.mark.slow
def test_nonfinite_loss_skip_option_skips_batches(tmp_path, shared_cache):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    args = [*QUICK, "optimizer.lr=1e12", "scheduler=constant", "trainer.max_steps=6",
            "module.nonfinite_loss=skip", "model.recipe.eval_every_n_steps=100"]
    result = run_cli(args, tmp_path, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "non-finite loss at step 1 on at least one rank, batch skipped" in result.stdout
    assert "Traceback" not in result.stderr
    run = tmp_path / "runs" / "quickstart"
    state = json.loads((run / "step-6" / "trainer_state.json").read_text())
    assert state["step"] == 6
    weights = load_file(run / "step-6" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


@pytest.mark.slow
def test_skip_on_two_processes_with_a_nan_on_one_rank_neither_hangs_nor_diverges(tmp_path, shared_cache):
    """Rank 1 alone sees a NaN loss at step 3: both ranks skip that batch and stay equal."""
    probe_dir = tmp_path / "probe"
    args = [*QUICK, "trainer.devices=2", "trainer.strategy=ddp", "hardware.micro_batch_size=16",
            "trainer.max_steps=6", "module.nonfinite_loss=skip", "model.recipe.eval_every_n_steps=100",
            "+callbacks.nan._target_=tests.probes.NanOnOneRank", "+callbacks.nan.step=3",
            "+callbacks.nan.rank=1", f"+callbacks.nan.out_dir={probe_dir}"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache), "PYTHONPATH": str(ROOT)},
                     timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "non-finite loss at step 3 on at least one rank, batch skipped on every rank" in result.stdout
    ranks = [json.loads((probe_dir / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in ranks] == [6, 6] and all(r["finite"] for r in ranks)
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["pid"] != ranks[1]["pid"]


@pytest.mark.slow
def test_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, shared_cache):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    first = run_cli([*QUICK, "trainer.max_steps=20",
    "model.recipe.checkpoint_every_n_steps=10"], tmp_path, env)
    assert first.returncode == 0, first.stderr[-2000:]
    ckpts = tmp_path / "runs" / "quickstart" / "checkpoints"
    last = ckpts / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    (ckpts / "step-20.ckpt").write_bytes(b"garbage")
    again = run_cli([*QUICK, "trainer.max_steps=25",
                     "model.recipe.checkpoint_every_n_steps=10"], tmp_path, env)
    assert again.returncode == 0, again.stderr[-2000:]
    out = again.stdout + again.stderr
    assert "checkpoints/last.ckpt is truncated or corrupt" in out
    assert "step-10.ckpt" in out.split("Restoring states from the checkpoint path at", 1)[1][:300]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, shared_cache):
    env = {**OFFLINE_ENV, "TTL_CACHE_DIR": str(shared_cache), "PATH": "/usr/bin:/bin"}
    args = [sys.executable, *QUICK, "logger=csv", "trainer.max_steps=100000",
            "trainer.log_every_n_steps=1", "model.recipe.checkpoint_every_n_steps=100000"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "runs" / "quickstart" / "logs" / "version_0" / "metrics.csv"
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 200):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "preempted at step" in out and "run the same command to resume" in out
    last = tmp_path / "runs" / "quickstart" / "checkpoints" / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert step > 0
    resumed = run_cli([*QUICK, f"trainer.max_steps={step + 3}"], tmp_path,
                      {"TTL_CACHE_DIR": str(shared_cache)})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"step-{step + 3}" in resumed.stdout


@pytest.mark.slow
def test_slurm_requeue_signal_saves_requeues_and_the_requeued_job_resumes(tmp_path, shared_cache):
    # `scontrol` is SLURM's own client, absent here: a stand-in on PATH records the call.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "ttl-160m",
             "SLURM_NODELIST": "localhost", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "SLURM_NODEID": "0", "PATH": f"{bin_dir}:/usr/bin:/bin"}
    env = {**OFFLINE_ENV, "TTL_CACHE_DIR": str(shared_cache), **slurm}
    args = [sys.executable, *QUICK, "logger=csv", "trainer.max_steps=100000",
            "trainer.log_every_n_steps=1", "model.recipe.checkpoint_every_n_steps=100000"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "runs" / "quickstart"
    metrics = run_dir / "logs" / "version_0" / "metrics.csv"
    hpc = run_dir / "hpc_ckpt_1.ckpt"
    deadline = time.time() + 180
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 200):
        time.sleep(0.5)
    proc.send_signal(signal.SIGUSR1)  # SLURM's warning before the time limit (--signal)
    while time.time() < deadline and not (calls.exists() and hpc.exists()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # then SLURM stops the job
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    assert checkpoint_is_readable(hpc)
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert step >= torch.load(hpc, weights_only=False)["global_step"] > 0

    # The requeued job runs the same command under the same job id and resumes.
    requeued = run_cli([*QUICK, f"trainer.max_steps={step + 3}"], tmp_path,
                       {"TTL_CACHE_DIR": str(shared_cache), **slurm})
    assert requeued.returncode == 0, requeued.stderr[-2000:]
    assert "Restoring states from the checkpoint path" in requeued.stdout + requeued.stderr
    assert f"step-{step + 3}" in requeued.stdout


@pytest.mark.slow
def test_unreadable_checkpoint_given_explicitly_is_refused(tmp_path, shared_cache):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    result = run_cli([*QUICK, f"resume={bad}"], tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 2
    assert f"resume={bad}: unreadable checkpoint (truncated or corrupt)" in result.stderr
    assert not (tmp_path / "runs" / "quickstart" / "config.yaml").exists()
