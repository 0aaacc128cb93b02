"""perf/* on a 2-process run with gradient accumulation 4, checked against the test's own clock."""

import csv
import json

import pytest

from ttl.model import build_model, count_parameters, llama_config

from ...conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

PEAK = 1e12


def test_tokens_per_second_and_mfu_under_accumulation_on_two_processes(tmp_path, shared_cache):
    clock = tmp_path / "clock.jsonl"
    args = ["-m", "ttl.train", "experiment=quickstart", "logger=csv", "callbacks.emissions.enabled=false",
            "trainer.devices=2", "trainer.strategy=ddp", "hardware.micro_batch_size=4",
            "trainer.max_steps=16", "trainer.log_every_n_steps=4",
            "model.recipe.checkpoint_every_n_steps=100",
            "model.recipe.eval_every_n_steps=100", f"callbacks.throughput.peak_flops={PEAK}",
            "+callbacks.clock._target_=tests.probes.StepClock", f"+callbacks.clock.path={clock}"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache), "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 micro-batch x 128 seq x 2 device(s) x 4 accumulation" in result.stdout
    with open(next((tmp_path / "runs" / "quickstart" / "logs").glob("version_*/metrics.csv"))) as f:
        logged = [row for row in csv.DictReader(f) if row.get("perf/tokens_per_sec")]
    times = {r["step"]: r["time"] for r in map(json.loads, clock.read_text().splitlines())}
    # The CSV logger files a logging step's row under the step count before its update.
    steps = [int(row["step"]) + 1 for row in logged]
    assert steps == [4, 8, 12, 16]

    from omegaconf import OmegaConf
    model_cfg = OmegaConf.to_container(OmegaConf.load(tmp_path / "runs" / "quickstart" / "config.yaml").model)
    model = build_model(llama_config(model_cfg), "meta")
    n = count_parameters(model) - model_cfg["vocab_size"] * model_cfg["hidden_size"]  # no input embedding
    flops = 6 * n + 12 * model_cfg["num_hidden_layers"] * model_cfg["hidden_size"] * 128
    for previous, step, row in zip(steps, steps[1:], logged[1:], strict=False):
        measured = (step - previous) * 4096 / (times[step] - times[previous])
        rate = float(row["perf/tokens_per_sec"])
        assert rate == pytest.approx(measured, rel=0.25)
        assert float(row["perf/tokens_per_sec_per_device"]) == pytest.approx(rate / 2, rel=1e-6)
        assert float(row["perf/mfu"]) == pytest.approx(rate * flops / (PEAK * 2), rel=1e-6)
