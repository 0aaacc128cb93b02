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



def test_round2_lever_script_and_rehearsal_report_run_on_cpu(tmp_path, shared_cache):
    """Issue 14's device run, its CPU path: every variant of the round2 plan runs or reports its
    error (the loss kernels' packages are GPU-only), and the rehearsal report reads a real run."""
    out = tmp_path / "round2.json"
    env = {"PYTHONPATH": f"{ROOT}:{ROOT / 'experiments' / 'bench_gpu'}"}
    result = run_cli([str(ROOT / "experiments" / "bench_gpu" / "levers.py"), "--plan", "round2", "--cpu",
                      "--out", str(out)], tmp_path, env)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"ttl", "ttl+chunked-loss", "ttl+cut-cross-entropy", "ttl+liger-flce",
                         "ttl+cudagraphs", "ttl micro 8", "ttl micro 16", "baseline"}
    # The chunked loss trains exactly what the Hugging Face loss trains (same data, weights).
    assert rows["ttl+chunked-loss"]["first_loss"] == pytest.approx(rows["ttl"]["first_loss"], abs=1e-4)
    assert rows["ttl+chunked-loss"]["last_loss"] == pytest.approx(rows["ttl"]["last_loss"], abs=1e-3)
    assert rows["ttl micro 8"]["micro_batch"] == 8 and rows["ttl micro 16"]["micro_batch"] == 16
    for name in ("ttl+cut-cross-entropy", "ttl+liger-flce"):
        assert "tokens_per_s" in rows[name] or "error" in rows[name]

    train = run_cli(["-m", "ttl.train", "experiment=quickstart", "logger=wandb", "trainer.max_steps=30",
                     "model.recipe.checkpoint_every_n_steps=10", "trainer.log_every_n_steps=5",
                     "run_name=rehearsal"],
                    tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert train.returncode == 0, train.stderr[-2000:]
    report = run_cli([str(ROOT / "experiments" / "bench_gpu" / "device" / "rehearsal_report.py"),
                      str(tmp_path / "runs" / "rehearsal"), str(out)], tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    figures = json.loads(report.stdout)
    assert [e["step"] for e in figures["exports"]] == [10, 20, 30] and figures["exports_complete"]
    assert figures["card"] and figures["emissions_csv"] and len(figures["logged_tokens_per_s"]) == 6
    assert figures["ratio_logged_over_bench"] == pytest.approx(
        figures["logged_median_after_first"] / figures["bench_ttl_tokens_per_s"], abs=1e-3)


def test_the_tokenizer_benchmark_cuts_lines_sentencepiece_keeps_whole():
    """sentencepiece silently skips lines over 4,192 bytes: the benchmark feeds it shorter ones."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", ROOT / "experiments" / "bench_data_tokenizer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = "título\n" + "ação " * 3000 + "\n" + "x" * 9000
    lines = list(bench.sentencepiece_lines(doc, limit=4192))
    assert all(len(line.encode()) <= 4192 for line in lines) and len(lines) >= 6
    assert "".join(lines).replace(" ", "") == doc.replace("\n", "").replace(" ", "")
