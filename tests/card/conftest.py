"""A run directory as training and `python -m ttl.evaluate harness` leave it, without training:
config.yaml, three exports (step 10 has no perplexity) and the harness results of step 30."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

# The quickstart model (393,536 parameters) and the figures of three exports.
CONFIG = {
    "run_name": "tiny-pt",
    "model": {"name": "tiny", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "intermediate_size": 256, "vocab_size": 2048,
              "max_position_embeddings": 128, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
              "initializer_range": 0.02, "tie_word_embeddings": False, "hidden_act": "silu",
              "recipe": {"lr": 0.002, "tokens_per_step": 4096}},
    "data": {"path": "/somewhere/on/the/training/machine/sample", "dataset_id": None},
    "callbacks": {"emissions": {"enabled": True, "country_iso_code": "BRA",
                                "geographical_location": "Brazil", "hardware_used": None}},
}
STATES = {
    10: {"val_ppl": None, "energy_kwh": 0.0001382655992, "emissions_kg_co2eq": 1.359814515e-05,
         "wall_time_s": 17.71},
    20: {"val_ppl": 966.1782, "energy_kwh": 0.0002793802, "emissions_kg_co2eq": 2.747690419e-05,
         "wall_time_s": 36.2},
    30: {"val_ppl": 789.5846, "energy_kwh": 0.0004187522212, "emissions_kg_co2eq": 0.125,
         "wall_time_s": 54.88},
}
# What `python -m ttl.evaluate harness checkpoints=<run> suite=card` saves for step 30: some card
# columns, a metric no table shows, and a correlation left undefined (NaN).
HARNESS_30 = {
    "results": {
        "ttl_assin2_rte": {"alias": "ttl_assin2_rte", "f1_macro,none": 0.5336, "acc,none": 0.9},
        "ttl_assin2_sts": {"alias": "ttl_assin2_sts", "pearson,none": float("nan")},
        "ttl_arc_pt": {"alias": "ttl_arc_pt", "acc_norm,none": 0.26153846, "acc_norm_stderr,none": 0.01},
        "ttl_calame_pt": {"alias": "ttl_calame_pt", "acc,none": 0.4672},
        "ttl_lambada_pt": {"alias": "ttl_lambada_pt", "acc,none": 0.2098},
    },
    "n-shot": {"ttl_assin2_rte": 15, "ttl_assin2_sts": 15, "ttl_arc_pt": 25, "ttl_calame_pt": 0,
               "ttl_lambada_pt": 0},
}
HARNESS_30["n-samples"] = {task: {"original": 4, "effective": 4} for task in HARNESS_30["results"]}


def make_run(root: Path, harness: bool = True) -> Path:
    """The run directory under `root` (see the module's docstring)."""
    run = root / "runs" / "tiny-pt"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    for step, figures in STATES.items():
        export = run / f"step-{step}"
        export.mkdir()
        (export / "config.json").write_text("{}")
        state = {"step": step, "tokens": 4096 * step, "tokens_per_step": 4096, **figures,
                 "config_hash": "e250ba7d2530", "hardware": "CPU (2 cores)"}
        (export / "trainer_state.json").write_text(json.dumps(state))
    if harness:
        saved = {**HARNESS_30, "checkpoint": {"source": str(run / "step-30"), "name": "step-30",
                                              "revision": None, "step": 30, "tokens": 4096 * 30}}
        (run / "evaluation").mkdir()
        (run / "evaluation" / "harness-step-30.json").write_text(json.dumps(saved))
    return run


@pytest.fixture
def card_run(tmp_path) -> Path:
    """The run directory, with the harness results of step 30."""
    return make_run(tmp_path)
