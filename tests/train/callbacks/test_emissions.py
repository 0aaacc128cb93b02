"""Energy and emissions: a real tracker across a resume, and two machines summed."""

import csv
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from ttl.rundir import emissions_file, read_states
from ttl.train.callbacks.emissions import EmissionsMonitor

from ...conftest import OFFLINE_ENV


class _Machine:
    """What EmissionsMonitor.setup reads of a trainer on one process of one machine."""

    local_rank = node_rank = 0
    world_size = 1


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(10_000))


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_emissions_totals_survive_a_resume_with_a_real_tracker(tmp_path):
    first = EmissionsMonitor(str(tmp_path / "a"), measure_power_secs=1)
    first.setup(_Machine(), None, "fit")
    _burn(1.5)
    saved = first.state_dict()
    first.teardown(_Machine(), None, "fit")
    assert saved["energy_kwh"] > 0 and saved["emissions_kg"] > 0
    stopped = _rows(tmp_path / "a" / "emissions.csv")[-1]
    assert 0 < saved["energy_kwh"] <= float(stopped["energy_consumed"])

    resumed = EmissionsMonitor(str(tmp_path / "b"), measure_power_secs=1)
    resumed.load_state_dict(saved)
    resumed.setup(_Machine(), None, "fit")
    _burn(1.5)
    resumed.teardown(_Machine(), None, "fit")
    session = _rows(tmp_path / "b" / "emissions.csv")[-1]  # codecarbon's own record of the session
    kwh, kg = resumed.totals()
    assert kwh == pytest.approx(saved["energy_kwh"] + float(session["energy_consumed"]), rel=1e-9)
    assert kg == pytest.approx(saved["emissions_kg"] + float(session["emissions"]), rel=1e-9)
    assert resumed.state_dict() == {"energy_kwh": kwh, "emissions_kg": kg}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_machines_export_the_sum_of_both_trackers(tmp_path, shared_cache):
    """Two nodes of one process each (torchrun, on this machine): each node's tracker writes
    its own CSV; every export and the card hold the sum of both."""
    port = _free_port()
    args = ["experiment=quickstart", "logger=csv", "trainer.num_nodes=2", "trainer.devices=1",
            "trainer.strategy=ddp", "hardware.micro_batch_size=16", "trainer.max_steps=10",
            "model.recipe.checkpoint_every_n_steps=5", "model.recipe.eval_every_n_steps=5",
            "callbacks.emissions.measure_power_secs=1"]
    env = {**os.environ, **OFFLINE_ENV, "TTL_CACHE_DIR": str(shared_cache)}

    def node(rank: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
             "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
             "-m", "ttl.train", *args],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    nodes = [node(1), node(0)]
    outputs = [n.communicate(timeout=300)[0] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), outputs[1][-3000:] + outputs[0][-3000:]
    run = tmp_path / "runs" / "quickstart"
    trackers = [_rows(run / emissions_file(k)) for k in (0, 1)]
    assert all(len(rows) >= 2 for rows in trackers) and trackers[0][0]["run_id"] != trackers[1][0]["run_id"]
    states = read_states(run)
    assert [s["step"] for s in states] == [5, 10]
    for state in states:
        machines = state["session_energy_kwh_by_machine"]
        assert len(machines) == 2 and state["energy_kwh"] == pytest.approx(sum(machines), rel=1e-9)
        for value, rows in zip(machines, trackers, strict=True):
            # The row that machine's tracker wrote when this export was made.
            assert any(float(r["energy_consumed"]) == pytest.approx(value, rel=1e-8) for r in rows), value
    last = states[-1]
    assert last["energy_kwh"] == pytest.approx(sum(float(rows[-1]["energy_consumed"]) for rows in trackers),
                                               rel=1e-8)
    assert last["emissions_kg_co2eq"] == pytest.approx(sum(float(rows[-1]["emissions"]) for rows in trackers),
                                                       rel=1e-8)
    card = (run / "step-10" / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    grams = front["co2_eq_emissions"]["emissions"]
    assert grams == pytest.approx(last["emissions_kg_co2eq"] * 1000, rel=1e-6)
    assert f"{last['energy_kwh']:.6g} kWh" in card
