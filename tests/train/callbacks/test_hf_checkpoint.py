"""Each export carries the perplexity of its own weights at its own step, or none."""

import csv

import pytest
import yaml

from ttl.card.tables import format_tokens
from ttl.rundir import read_states

from ...conftest import run_cli

pytestmark = pytest.mark.slow


def test_exports_between_validations_carry_no_perplexity_and_the_card_only_measured_pairs(
        tmp_path, shared_cache):
    args = ["-m", "ttl.train", "experiment=quickstart", "logger=csv", "callbacks.emissions.enabled=false",
            "trainer.max_steps=30", "model.recipe.checkpoint_every_n_steps=10",
            "model.recipe.eval_every_n_steps=20"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "runs" / "quickstart"
    with open(next((run / "logs").glob("version_*/metrics.csv"))) as handle:
        validations = [float(r["val/ppl"]) for r in csv.DictReader(handle) if r.get("val/ppl")]
    assert len(validations) == 2  # at step 20, and the final one at step 30
    states = {s["step"]: s for s in read_states(run)}
    assert sorted(states) == [10, 20, 30]
    assert states[10]["val_ppl"] is None
    assert states[20]["val_ppl"] == pytest.approx(validations[0], abs=1e-4)
    assert states[30]["val_ppl"] == pytest.approx(validations[1], abs=1e-4)
    card = (run / "step-30" / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    rows = [line for line in body.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split("|")[1].strip() for r in rows] == [format_tokens(20 * 4096), format_tokens(30 * 4096)]
    matter = yaml.safe_load(front)
    assert matter["datasets"] == ["sample"]  # a name, never a path of the training machine
    assert "## Model Summary" in body and "## Out-of-scope Use" in body
    training_time = body.split("- **Training time:** ")[1].split("\n")[0]
    assert training_time.endswith(" seconds") and training_time != "0 seconds"
