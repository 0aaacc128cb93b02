"""A quickstart-sized run with checkpoints every few steps: every artifact of issue 4."""

import json
import subprocess
import sys

import pytest
import yaml
from transformers import AutoModelForCausalLM

from ttl.card.render import evaluations_table
from ttl.card.tables import format_quantity, format_tokens
from ttl.rundir import read_states

from ...conftest import run_cli

pytestmark = pytest.mark.slow

OVERRIDES = ["experiment=quickstart", "logger=wandb", "trainer.max_steps=30",
             "model.recipe.checkpoint_every_n_steps=10", "model.recipe.eval_every_n_steps=10",
             "trainer.log_every_n_steps=5",
             "callbacks.throughput.peak_flops=1e12", "callbacks.emissions.measure_power_secs=2",
             "run_name=artifacts"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_cache):
    cwd = tmp_path_factory.mktemp("artifacts")
    result = run_cli(["-m", "ttl.train", *OVERRIDES], cwd, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "artifacts"


def test_step_exports_load_and_their_figures_are_consistent(run_dir):
    states = read_states(run_dir)
    assert [s["step"] for s in states] == [10, 20, 30]
    for state in states:
        assert state["tokens"] == state["step"] * state["tokens_per_step"] == state["step"] * 4096
        assert state["val_ppl"] > 1 and state["energy_kwh"] > 0 and state["emissions_kg_co2eq"] > 0
        assert state["wall_time_s"] > 0 and len(state["config_hash"]) == 12
        model = AutoModelForCausalLM.from_pretrained(run_dir / f"step-{state['step']}")
        assert model.num_parameters() == 393_536
    assert len({s["config_hash"] for s in states}) == 1
    energies = [s["energy_kwh"] for s in states]
    assert energies == sorted(energies)
    assert states[-1]["val_ppl"] < states[0]["val_ppl"]


def test_lightning_checkpoints_keep_last_k_plus_last(run_dir):
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "step-20.ckpt", "step-30.ckpt"]
    # last.ckpt is a link to the newest checkpoint, not a second copy of it.
    last = run_dir / "checkpoints" / "last.ckpt"
    assert last.is_symlink() and last.resolve() == (run_dir / "checkpoints" / "step-30.ckpt").resolve()


def test_codecarbon_csv_is_in_the_run_directory(run_dir):
    lines = (run_dir / "emissions.csv").read_text().splitlines()
    assert lines[0].startswith("timestamp,project_name") and len(lines) >= 3


def _wandb_records(run_dir):
    run = next((run_dir / "wandb").glob("offline-run-*"))
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_wandb_offline_run_has_the_metrics_with_tokens_increasing(run_dir):
    history = [r["history"]["item"] for r in _wandb_records(run_dir) if r.get("type") == "history"]
    keys = set().union(*history)
    for key in ("train/loss", "train/ppl", "train/lr", "val/loss", "val/ppl", "progress/tokens",
                "perf/tokens_per_sec", "perf/mfu", "energy/kwh", "energy/kg_co2eq",
                "energy/joules_per_token"):
        assert key in keys, key
    # Every record carries the x-axis, and it never goes back.
    assert all("progress/tokens" in h for h in history)
    tokens = [h["progress/tokens"] for h in history]
    assert tokens == sorted(tokens) and tokens[-1] == 30 * 4096
    samples = [h for h in history if h.get("samples._type") == "table-file"]
    assert len(samples) >= 3  # one table per checkpoint


def test_model_card_front_matter_and_table_come_from_the_run(run_dir):
    card = (run_dir / "step-30" / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    matter = yaml.safe_load(front)
    states = read_states(run_dir)
    last = states[-1]
    assert matter["license"] == "apache-2.0" and matter["pipeline_tag"] == "text-generation"
    assert matter["inference"]["parameters"]["repetition_penalty"] == 1.2
    co2 = matter["co2_eq_emissions"]
    assert co2["source"] == "CodeCarbon" and co2["training_type"] == "pre-training"
    assert co2["emissions"] == pytest.approx(last["emissions_kg_co2eq"] * 1000, rel=1e-6)
    assert "393,536 parameters" in body and f"{last['energy_kwh']:.6g} kWh" in body
    assert evaluations_table(states) in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3
    for row, state in zip(rows, states, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells == [format_tokens(state["tokens"]), format_quantity(state["val_ppl"]),
                         format_quantity(state["energy_kwh"]), format_quantity(state["emissions_kg_co2eq"])]


def test_card_cli_writes_any_step_and_refuses_a_missing_one(run_dir, tmp_path):
    ok = run_cli(["-m", "ttl.card", f"run_dir={run_dir}", "step=10", f"output={tmp_path}/card.md"],
                 tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "# artifacts (step 10)" in (tmp_path / "card.md").read_text()
    bad = run_cli(["-m", "ttl.card", f"run_dir={run_dir}", "step=7"], tmp_path)
    assert bad.returncode == 2 and "step=7: no" in bad.stderr and "10, 20, 30" in bad.stderr


def test_card_includes_the_benchmark_tables_of_its_own_step(run_dir, tmp_path):
    # What `python -m ttl.evaluate harness checkpoints=<run> suite=tucano` writes for step 10.
    results = {
        "results": {"ttl_calame_pt": {"acc,none": 0.5}, "ttl_lambada_pt": {"acc,none": 0.25}},
        "n-shot": {"ttl_calame_pt": 0, "ttl_lambada_pt": 0},
        "n-samples": {"ttl_calame_pt": {"original": 4, "effective": 4},
                      "ttl_lambada_pt": {"original": 4, "effective": 4}},
        "checkpoint": {"source": str(run_dir / "step-10"), "name": "step-10", "revision": None,
                       "step": 10, "tokens": read_states(run_dir)[0]["tokens"]},
    }
    saved = run_dir / "evaluation" / "harness-step-10.json"
    saved.parent.mkdir(exist_ok=True)
    saved.write_text(json.dumps(results))
    try:
        for step in (10, 20):
            ok = run_cli(["-m", "ttl.card", f"run_dir={run_dir}", f"step={step}",
                          f"output={tmp_path}/card-{step}.md"], tmp_path)
            assert ok.returncode == 0, ok.stderr
        card = (tmp_path / "card-10.md").read_text()
        tokens = format_tokens(results["checkpoint"]["tokens"])
        assert "## Benchmarks" in card
        assert "| Checkpoint | Processed Tokens | CALAME-PT | LAMBADA-PT | Average |" in card
        assert f"| step-10 | {tokens} | 50.00 | 25.00 | 37.50 |" in card
        assert "## Benchmarks" not in (tmp_path / "card-20.md").read_text()  # step 20 was not evaluated
    finally:
        saved.unlink()


def _history(run):
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [r["history"]["item"] for r in records if r.get("type") == "history"]


def test_resumed_run_continues_wandb_history_where_the_checkpoint_left_it(run_dir, tmp_path, shared_cache):
    import shutil

    from ttl.train.loggers import wandb_step_in_checkpoint

    copy = tmp_path / "runs" / "artifacts"
    shutil.copytree(run_dir, copy)
    checkpoint = copy / "checkpoints" / "step-20.ckpt"
    resume_at = wandb_step_in_checkpoint(str(checkpoint), copy / "checkpoints")
    result = run_cli(["-m", "ttl.train", *OVERRIDES, f"resume={checkpoint}"], tmp_path,
                     {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (_history(run) for run in sorted((copy / "wandb").glob("offline-run-*")))

    # The resumed session numbers its rows from the checkpoint's W&B step (offline too)...
    assert second[0]["_step"] == resume_at
    # ...and re-logs exactly the rows the first session logged from that step on, so a
    # rewind to it (online) or `wandb sync` (offline) keeps every step once.
    def content(row):
        return {k: v for k, v in row.items() if k.startswith(("train/", "val/", "trainer/"))}

    replaced = [content(r) for r in first if r["_step"] >= resume_at]
    again = [content(r) for r in second]
    assert [sorted(r) for r in replaced] == [sorted(r) for r in again]
    for old, new in zip(replaced, again, strict=True):
        assert old["trainer/global_step"] == new["trainer/global_step"]
        for key in ("train/loss", "val/loss"):
            if key in old:
                assert new[key] == pytest.approx(old[key], abs=1e-5)
    merged = [r for r in first if r["_step"] < resume_at] + second
    steps = [r["_step"] for r in merged]
    assert steps == sorted(set(steps))
    assert sum("val/ppl" in r for r in merged) == 3  # validations at steps 10, 20 and 30
