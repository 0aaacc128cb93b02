"""The benchmark scripts run (on CPU, tiny model); their figures are recorded, not asserted."""

import json

import pytest

from .conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_gpu_benchmark_script_runs_on_cpu_with_the_tiny_model(tmp_path):
    out = tmp_path / "bench.json"
    result = run_cli([str(ROOT / "experiments" / "bench_gpu" / "bench.py"), "--cpu", "--out", str(out)],
                     tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["variant"]) for r in rows] == [("tiny", "baseline"), ("tiny", "ttl")]
    assert all(r["tokens_per_s"] > 0 and r["orig_mod_keys"] in (None, 0) for r in rows)
    # Both loops start from the same weights and data: the same first loss.
    assert rows[0]["first_loss"] == pytest.approx(rows[1]["first_loss"], abs=1e-4)
    assert "x baseline" in result.stdout

