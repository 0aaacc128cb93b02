"""Kill -9 at an arbitrary step, re-run the same command: the run ends as if never killed."""

import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from ttl.evaluate.logs import curve, read_metrics
from ttl.rundir import read_states

from ..conftest import OFFLINE_ENV, run_cli

pytestmark = pytest.mark.slow

STEPS, EVERY, TOKENS = 40, 5, 4096


def args(name: str) -> list[str]:
    return ["-m", "ttl.train", "experiment=quickstart", "logger=csv", f"run_name={name}",
            f"trainer.max_steps={STEPS}", f"model.recipe.checkpoint_every_n_steps={EVERY}",
            "model.recipe.eval_every_n_steps=20", "trainer.log_every_n_steps=1",
            "callbacks.emissions.measure_power_secs=1"]


def logged_steps(metrics) -> int:
    if not metrics.exists():
        return 0
    lines = metrics.read_text().splitlines()[1:]
    return len(lines)


def test_sigkill_then_rerun_matches_the_uninterrupted_run(tmp_path, shared_cache):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    straight = run_cli(args("straight"), tmp_path, env)
    assert straight.returncode == 0, straight.stderr[-2000:]

    kill_after = random.Random().randint(12, 30)  # an arbitrary step, different each run
    metrics = tmp_path / "runs" / "killed" / "logs" / "version_0" / "metrics.csv"
    proc = subprocess.Popen([sys.executable, *args("killed")], cwd=tmp_path,
                            env={**OFFLINE_ENV, **env, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and logged_steps(metrics) < kill_after:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = run_cli(args("killed"), tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Restoring states from the checkpoint path" in resumed.stdout + resumed.stderr

    a = load_file(tmp_path / "runs" / "straight" / f"step-{STEPS}" / "model.safetensors")
    b = load_file(tmp_path / "runs" / "killed" / f"step-{STEPS}" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6

    states = read_states(tmp_path / "runs" / "killed")
    assert states[-1]["tokens"] == STEPS * TOKENS
    energies = [s["energy_kwh"] for s in states]
    walls = [s["wall_time_s"] for s in states]
    assert energies == sorted(energies) and walls == sorted(walls)

    # Every step logged exactly once once the sessions are merged, with the same losses.
    rows = read_metrics(tmp_path / "runs" / "killed")
    tokens, losses = curve(rows, "train/loss", TOKENS)
    assert tokens == [TOKENS * k for k in range(1, STEPS + 1)]
    _, reference = curve(read_metrics(tmp_path / "runs" / "straight"), "train/loss", TOKENS)
    assert losses == pytest.approx(reference, abs=1e-5)
