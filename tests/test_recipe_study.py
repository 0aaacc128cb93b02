"""experiments/recipe_study/study.py: held-out halves never trained on, seed statistics, the
"beyond the seed spread" rule, learning-rate curves, tokens to target and the 160m rule."""

import importlib.util
import json
import math
import re
import shlex
import statistics
import sys
from pathlib import Path

import pytest
import torch

from ttl.data.sources import resolve_source

from .conftest import ROOT, SHARED_DATA

LAYOUT = SHARED_DATA / "pt-corpus-instruct-layout"
README = ROOT / "experiments" / "recipe_study" / "README.md"


def readme_commands(page: Path, data_dir: Path) -> list[str]:
    """The `python -m ttl.train` commands of the page's bash blocks as bash would run them:
    continuation lines joined, the blocks' variables (`D=...`, `LR=...`) expanded, and `D` (the
    user's local copy of the corpus) set to `data_dir`."""
    commands, variables, in_block, pending = [], {}, False, ""
    for line in page.read_text().splitlines():
        if line.strip().startswith("```"):
            in_block = line.strip() == "```bash" if not in_block else False
            continue
        if not in_block:
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        text, pending = re.sub(r"\s+#.*$", "", pending), ""
        text = re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], text)
        if assignment := re.fullmatch(r"([A-Z]\w*)=(.*)", text):
            (value,) = shlex.split(assignment.group(2)) or [""]
            variables[assignment.group(1)] = str(data_dir) if assignment.group(1) == "D" else value
        elif text.startswith("python -m ttl.train"):
            commands.append(text)
    return commands


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study", ROOT / "experiments" / "recipe_study" / "study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(arm, lr, seed, selection, report, curve_losses, tokens_per_point=1000, speed=1000.0):
    """One finished run as analyse_setting reads it: held-out scores and a val/loss curve."""
    half = lambda loss: {"loss": loss, "bits_per_byte": loss / 2}  # noqa: E731
    tokens = [tokens_per_point * (i + 1) for i in range(len(curve_losses))]
    return {"arm": arm, "lr": lr, "seed": seed, "curve": (tokens, list(curve_losses)), "tokens_per_s": speed,
            "scores": {"selection": half(selection), "report": half(report), "tokens": tokens[-1],
                       "parameters": 7}}


def test_arms_are_named_by_their_switches(study):
    shared = ["experiment=recipe_study", "data.path=/d", "seed=2", "run_name=x", "model.recipe.lr=1e-3"]
    assert study.arm_of(shared) == "published"
    assert study.arm_of([*shared, "recipe_switch=beta2"]) == "beta2"
    assert study.arm_of([*shared, "recipe_switch=[muon,wsd]"]) == "muon+wsd"
    assert study.arm_of([*shared, "recipe_switch=mup"], output_multiplier=0.25) == "mup+out0.25"
    assert study.arm_of([*shared, "recipe_switch=mup"], input_multiplier=4) == "mup+in4"


def grid(arm, losses, lrs=(1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2), speed=1000.0):
    return [run(arm, lr, 1, loss, loss + 0.1, [loss + 1, loss + 0.5, loss], speed=speed)
            for lr, loss in zip(lrs, losses, strict=True)]


def test_a_setting_is_the_model_and_steps_and_a_precision_other_than_the_studys(study):
    from omegaconf import OmegaConf

    def cfg(precision):
        return OmegaConf.create({"model": {"name": "study"},
                                 "trainer": {"max_steps": 1600, "precision": precision}})

    assert study.setting_of(cfg("bf16-mixed")) == "study@1600"
    # fp32 runs (a CPU without native bf16) are a setting of their own, never compared with bf16's
    assert study.setting_of(cfg(32)) == "study@1600/32"


def test_each_arm_is_judged_at_its_own_best_learning_rate(study):
    rows = grid("published", [6.3, 6.1, 6.0, 6.2, 6.5])  # best 4e-3, inside the grid
    rows += [run("published", 4e-3, s, 6.0 + d, 6.1 + d, [7.0, 6.5, 6.0 + d])
             for s, d in ((2, 0.02), (3, 0.04))]
    rows += grid("muon", [6.4, 6.2, 6.0, 5.8, 5.7], speed=500.0)  # best on the edge: the grid must grow
    rows += grid("beta2", [6.2, 5.9, 6.0, 6.1, 6.3])  # best 2e-3
    rows += [run("beta2", 2e-3, s, 5.9 + d, 6.0 + d, [6.8, 6.4, 5.9 + d])
             for s, d in ((2, 0.01), (3, 0.03))]
    arms = study.analyse_setting(rows, cost={"beta2": 0.9})
    best = {name: arm["best_lr"] for name, arm in arms.items()}
    assert best == {"published": 4e-3, "beta2": 2e-3, "muon": 1.6e-2}
    assert not arms["published"]["edge"] and arms["muon"]["edge"]
    assert [p["selection_loss"] for p in arms["beta2"]["lr_curve"]] == [6.2, 5.9, 6.0, 6.1, 6.3]
    base = arms["published"]["report_loss"]
    assert base["n"] == 3
    assert base["mean"] == pytest.approx(6.12)
    assert base["sd"] == pytest.approx(statistics.stdev([6.1, 6.12, 6.14]))
    assert arms["beta2"]["report_loss_delta"] == pytest.approx((6.0 + 6.01 + 6.03) / 3 - 6.12)
    assert arms["beta2"]["report_loss_beyond_spread"]
    assert not arms["muon"]["report_loss_beyond_spread"]  # one seed: no spread to exceed
    # Tokens to target: published's mean final val loss is 6.02; beta2's mean curve
    # (6.8, 6.4, 5.9133) crosses it between 2,000 and 3,000 tokens.
    target = (6.0 + 6.02 + 6.04) / 3
    assert arms["beta2"]["target_val_loss"] == pytest.approx(target)
    last = (5.9 + 5.91 + 5.93) / 3
    expected = 2000 + 1000 * (6.4 - target) / (6.4 - last)
    assert arms["beta2"]["tokens_to_target"] == pytest.approx(expected)
    assert arms["beta2"]["tokens_to_target_ratio"] == pytest.approx(expected / 3000)
    assert arms["published"]["tokens_to_target_ratio"] == pytest.approx(1.0)
    # Cost: the benchmark's ratio where it has one, else the runs' own logged tokens/s.
    assert (arms["beta2"]["tokens_per_s_ratio"], arms["muon"]["tokens_per_s_ratio"]) == (0.9, 0.5)
    assert arms["beta2"]["time_to_target_ratio"] == pytest.approx(expected / 3000 / 0.9)


def test_an_earlier_results_file_gives_back_its_runs_and_the_same_figures(study, tmp_path):
    """A study continued elsewhere: runs read back from --out's JSON analyse exactly as before."""
    rows = grid("published", [6.3, 6.1, 6.0, 6.2, 6.5]) + grid("muon", [6.2, 5.9, 5.8, 6.1, 6.3])
    rows += [run("published", 4e-3, 2, 6.05, 6.12, [7.0, 6.5, 6.03])]
    for i, row in enumerate(rows):
        row |= {"setting": "study@400", "dir": f"runs/x-sweep/{i}", "overrides": f"seed={row['seed']}"}
    settings = {"study@400": study.analyse_setting(rows, cost={})}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(study.results_json(settings, {}, {"selection": ["a"], "report": []})))
    back = study.recorded_runs(path)
    key = lambda r: (r["arm"], r["lr"], r["seed"])  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, rows))
    assert {r["setting"] for r in back} == {"study@400"}
    again = study.analyse_setting(back, cost={})
    for name in ("published", "muon"):
        for field in ("best_lr", "fitted_lr", "report_loss", "tokens_to_target_ratio"):
            assert again[name][field] == settings["study@400"][name][field]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(study.TTLError, match="bad.json"):
        study.recorded_runs(tmp_path / "bad.json")


def test_first_crossing_interpolates_and_says_when_a_curve_never_reaches(study):
    assert study.first_crossing([100, 200, 300], [5.0, 4.0, 3.0], 3.5) == pytest.approx(250)
    assert study.first_crossing([100, 200], [5.0, 4.0], 3.9) is None
    assert study.first_crossing([100, 200], [3.0, 2.0], 3.5) == 100


def test_the_fitted_optimum_is_the_parabolas_vertex_in_log_lr(study):
    lrs = [6e-4, 1.2e-3, 2.4e-3, 4.8e-3]
    # An exact parabola in log2(lr) with its vertex at log2(1.2e-3) + 0.25.
    losses = [(i - 1.25) ** 2 + 4.0 for i in range(4)]
    assert study.fitted_optimum(lrs, losses) == pytest.approx(1.2e-3 * 2 ** 0.25)
    # A tie between two grid points: the optimum lies half-way between them (in log lr).
    assert study.fitted_optimum(lrs, [5.0, 4.0, 4.0, 5.0]) == pytest.approx(1.2e-3 * 2 ** 0.5)
    assert study.fitted_optimum(lrs, [4.0, 4.5, 5.0, 6.0]) is None  # best on the edge
    assert study.fitted_optimum([1e-3, 3e-3, 9e-3], [5.0, 4.0, 5.0]) is None  # not a x2 grid


def test_the_160m_rule_is_the_power_law_through_both_scales(study):
    def arm(best, delta, beyond=True):
        return {"best_lr": best, "edge": False, "report_loss_delta": delta,
                "report_loss_beyond_spread": beyond}

    settings = {study.SMALL: {"published": arm(2.4e-3, 0.0), "muon": arm(9.6e-3, -0.5)},
                study.MEDIUM: {"published": arm(1.2e-3, 0.0), "muon": arm(4.8e-3, -0.2)}}
    predictions = study.predict_160m(settings)
    settings[study.MEDIUM]["muon"]["fitted_lr"] = 2.4e-3  # a fitted optimum wins over the grid point
    assert study.predict_160m(settings)["muon"]["exponent"] == pytest.approx(-1.0)
    # Four times the non-embedding parameters halved the best lr: exponent -1/2.
    assert predictions["muon"]["exponent"] == pytest.approx(-0.5)
    assert predictions["muon"]["lr_160m"] == pytest.approx(4.8e-3 * (113_246_208 / 3_407_872) ** -0.5)
    assert predictions["muon"]["gain"] == "shrinks" and predictions["muon"]["beyond_spread_at_both"]
    assert "gain" not in predictions["published"]


@pytest.mark.skipif(not LAYOUT.is_dir(), reason=f"{LAYOUT} is not available on this machine")
def test_heldout_halves_split_exactly_what_training_never_reads(study):
    halves = study.heldout_halves(str(LAYOUT), 0.05)
    def documents(split):
        return list(resolve_source(str(LAYOUT), split, "text", "train", "validation", 0.05).documents())

    training, held_out = set(documents("train")), documents("validation")
    assert sorted(halves["selection"] + halves["report"]) == sorted(held_out)
    assert not set(halves["selection"]) & set(halves["report"])
    assert not set(held_out) & training
    assert 150 < len(halves["selection"]) < 300 and 150 < len(halves["report"]) < 300


def test_documents_are_scored_one_by_one_in_bits_per_byte(study, tiny_tokenizer):
    """Against a direct computation: each document alone, `<s>` + text in one forward pass."""
    from ttl.model import build_model, llama_config

    torch.manual_seed(0)
    config = llama_config(dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               num_key_value_heads=2, intermediate_size=64,
                               vocab_size=len(tiny_tokenizer), max_position_embeddings=512))
    model = build_model(config).eval()
    texts = ["A capivara é o maior roedor do mundo.", "", "Olá, mundo! Ação, coração e pão. " * 6]
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for text in filter(None, texts):
            text_ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([[tiny_tokenizer.bos_token_id, *text_ids]])
            nll += model(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1)
            tokens += ids.shape[1] - 1
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    assert n_bytes > sum(len(t) for t in texts)  # accents: bytes, not characters
    whole = study.score_documents(model, tiny_tokenizer, texts, seq_len=512)
    assert (whole.tokens, whole.bytes, whole.documents) == (tokens, n_bytes, 2)
    assert whole.nll_sum == pytest.approx(nll, rel=1e-5)
    assert whole.bits_per_byte == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-5)
    assert whole.loss == pytest.approx(nll / tokens, rel=1e-5)
    # Windows shorter than the long document: every token still predicted exactly once, with
    # less context (a different but close figure).
    windowed = study.score_documents(model, tiny_tokenizer, texts, seq_len=16, stride=8, batch_size=3)
    assert windowed.tokens == tokens and windowed.bytes == n_bytes
    assert windowed.nll_sum != pytest.approx(nll, rel=1e-7)
    assert windowed.nll_sum == pytest.approx(nll, rel=0.1)


@pytest.mark.parametrize("preset, name", [("study", "study"), ("study_4x", "study-4x"), ("160m", "160m")])
def test_non_embedding_counts_are_the_models_hidden_matrices(study, preset, name):
    from ttl.model import build_model, llama_config
    from ttl.train.config import model_preset

    with torch.device("meta"):
        model = build_model(llama_config(model_preset(preset)))
    hidden = sum(p.numel() for n, p in model.named_parameters()
                 if n.startswith("model.layers.") and p.ndim == 2)
    assert study.NON_EMBEDDING[name] == hidden


def test_the_160m_check_runs_both_recipes_and_reports_tokens_to_target(tmp_path, sample_hub_layout,
                                                                       monkeypatch):
    """experiments/recipe_study/check_160m.py, on CPU in a few steps of the tiny model: two runs of
    the same token budget, their validation curves, and modern's tokens to ttl_160m's final loss."""
    spec = importlib.util.spec_from_file_location(
        "check_160m", ROOT / "experiments" / "recipe_study" / "check_160m.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    monkeypatch.chdir(tmp_path)
    for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline",
                       "OMP_NUM_THREADS": "1", "TTL_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(key, value)
    result = check.main(["--data", str(sample_hub_layout), "--steps", "8", "--runs-dir", "runs",
                         "--out", "check.json", "model=tiny", "trainer=cpu", "tokenizer=sample",
                         "hardware.compile=false", "callbacks.emissions.enabled=false",
                         "callbacks.samples=null",
                         "data.val_fraction=0.1", "data.max_val_blocks=8"])
    curves = result["curves"]
    assert set(curves) == {"ttl_160m", "ttl_160m_modern"}
    # Equal budgets: validation every 8 // 20 -> 1 step, 8 points of 4,096 tokens each (the tiny step).
    every_step = [4096 * i for i in range(1, 9)]
    assert curves["ttl_160m"]["tokens"] == curves["ttl_160m_modern"]["tokens"] == every_step
    target = curves["ttl_160m"]["val_loss"][-1]
    assert result["target_val_loss"] == target
    expected = study_first_crossing(curves["ttl_160m_modern"], target)
    assert result["tokens_to_target"] == expected
    assert result["tokens_to_target_ratio"] == (None if expected is None else expected / (8 * 4096))
    assert json.loads((tmp_path / "check.json").read_text())["target_val_loss"] == target


def study_first_crossing(points, target):
    """An independent tokens-to-target: the first logged point at or below the target, linearly
    interpolated with the point before it."""
    tokens, values = points["tokens"], points["val_loss"]
    for i, value in enumerate(values):
        if value <= target:
            if i == 0:
                return float(tokens[0])
            share = (values[i - 1] - target) / (values[i - 1] - value)
            return tokens[i - 1] + (tokens[i] - tokens[i - 1]) * share
    return None


@pytest.mark.slow  # plans every job of every sweep the README shows: 163 plans, about a minute
@pytest.mark.skipif(not LAYOUT.is_dir(), reason=f"needs the Hub-layout copy of the corpus at {LAYOUT}")
def test_the_studys_training_commands_plan_as_written_on_the_hub_layout(tmp_path, monkeypatch, capsys):
    """Every sweep the README shows, on a local copy in the Hub's layout: each job composes and
    plans (dry_run: the model built and counted, the batch split, the data path checked)."""
    from .test_docs import entry

    commands = readme_commands(README, LAYOUT)
    assert len(commands) == 67 and all(str(LAYOUT) in c for c in commands)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TTL_CACHE_DIR", str(tmp_path / "cache"))
    planned = 0
    for command in commands:
        main, args = entry(command)
        assert main([*args, "dry_run=true"]) == 0, command
        out = capsys.readouterr().out
        planned += len(re.findall(r"^model\s+(?:study(?:-4x)?|proxy-\d+): [\d,]+ parameters", out,
                                  flags=re.M))
        assert str(LAYOUT) in out
    # round 2: 18 + 18 small lr points, 6 + 2 seeds, 3 + 3 medium, 3 + 3 at the longer horizon;
    # round 1: 27 switch runs, 3 at equal wall time, 3 combined; round 3: 10 + 10 proxy lr points
    # at widths 64 and 128, 3 + 2 + 1 at width 256, 4 x 2 seeds, 3 + 3 + 2 + 2 zero-head points,
    # 2 + 2 + 1 + 1 output-multiplier and 1 + 1 + 1 + 1 + 2 + 1 input-multiplier points, then
    # the input multiplier's width-128 and -256 points (1 + 2 + 1 + 1) and 2 x 2 seeds; the
    # recipe study on µP: 3 + 1 points of wsd and of beta2+wsd at width 64, their 2 x 2 seeds,
    # beta2+wsd's 5 width-256 runs, 3 + 3 + 3 + 1 + 1 points of beta2, muon and muon+wsd at
    # width 64, muon+wsd's 2 seeds there and 4 + 2 width-256 runs, wsd's width-256 run, 2 runs
    # at 4x the tokens
    assert planned == 56 + 33 + 44 + 13 + 9 + 8 + 4 + 5 + 11 + 2 + 6 + 1 + 2
    assert not list(tmp_path.glob("runs/**/step-*"))  # a plan trains nothing


def load_coord_check():
    path = ROOT / "experiments" / "recipe_study" / "coord_check.py"
    spec = importlib.util.spec_from_file_location("coord_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_coordinate_check_sees_the_standard_parametrization_grow_and_mup_stay_flat():
    coord = load_coord_check()
    names = ["layer0.attn", "layer0.mlp", "layer1.out", "logits"]
    growth = {p: {name: coord.growth(coord.coordinate_check([64, 256], p, steps=4, lr=3e-3, seeds=1), name, 3)
                  for name in names} for p in ("standard", "mup")}
    # Standard: Adam's updates add up over 4x the coordinates; every hidden output grows.
    assert all(growth["standard"][name] > 3 for name in names[:3]), growth
    assert growth["standard"]["logits"] > 1.5, growth
    # µP: each layer's output and the logits stay within a factor 2 across 4x the width.
    assert all(0.5 < growth["mup"][name] < 2 for name in names), growth


def test_transfer_fits_the_optimums_drift_per_arm_and_lists_each_output_multiplier():
    path = ROOT / "experiments" / "recipe_study" / "transfer.py"
    spec = importlib.util.spec_from_file_location("transfer", path)
    transfer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(transfer)

    def arm(fitted: float, best: float) -> dict:
        curve = [{"lr": lr, "selection_loss": 6.0} for lr in (best / 2, best, best * 2)]
        return {"lr_curve": curve, "best_lr": best, "edge": False, "fitted_lr": fitted,
                "report_loss": 6.0, "selection_loss": 6.0}

    # The standard parametrization's optimum halves per doubling (exponent -1); µP's stays put.
    by_width = {64: {"published": arm(4e-3, 4e-3), "mup": arm(2e-3, 2e-3), "mup+out4": arm(1e-3, 1e-3),
                     "mup+out0.25": arm(1e-3, 1e-3), "mup+in4": arm(1e-3, 1e-3)},
                256: {"published": arm(1e-3, 1e-3), "mup": arm(2e-3, 2e-3)}}
    rows = transfer.transfer_rows(by_width)
    assert list(rows) == ["published", "mup", "mup+in4", "mup+out0.25", "mup+out4"]
    assert rows["published"]["exponent"] == pytest.approx(-1.0)
    assert rows["published"]["grid_steps"] == pytest.approx(-2.0)
    assert rows["mup"]["exponent"] == pytest.approx(0.0, abs=1e-12)
    assert "exponent" not in rows["mup+out4"]  # one width: nothing to fit
    assert transfer.arm_title("mup+out4") == "µP (base width 768), output multiplier 4"
    assert transfer.arm_title("mup+in16") == "µP (base width 768), input multiplier 16"


def test_transfer_measures_each_seeded_arm_against_tuned_published_and_mup_alone():
    path = ROOT / "experiments" / "recipe_study" / "transfer.py"
    spec = importlib.util.spec_from_file_location("transfer", path)
    transfer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(transfer)

    def row(*losses: float) -> dict:
        loss = {"mean": sum(losses) / len(losses), "min": min(losses), "max": max(losses), "n": len(losses)}
        return {"best_lr": 1e-3, "seeds": list(range(1, len(losses) + 1)), "report_loss": loss}

    found = transfer.gains({
        "published": {"rows": {64: row(5.5, 5.4, 5.6), 256: row(5.8, 5.7, 5.9)}},
        "mup+in16": {"rows": {64: row(5.2, 5.25, 5.15), 256: row(4.8, 4.85, 4.82)}},
        # beats µP alone by 0.15 at width 64 (beyond the spread), by 0.01 at 256 (within it)
        "mup+wsd+in16": {"rows": {64: row(5.05, 5.1, 5.0), 256: row(4.80, 4.83, 4.81)}},
        "mup+muon+in16": {"rows": {64: row(5.0)}},  # one seed: not a deciding point
    })
    assert list(found) == ["mup+in16", "mup+wsd+in16"]
    at64 = found["mup+wsd+in16"]["widths"][64]["against"]
    assert at64["published"] == (pytest.approx(5.05 - 5.5), True)
    assert at64["mup+in16"] == (pytest.approx(-0.15), True)
    assert found["mup+wsd+in16"]["widths"][256]["against"]["mup+in16"][1] is False
    trend = found["mup+wsd+in16"]["trend"]
    assert trend["mup+in16"]["gain"] == "shrinks" and trend["mup+in16"]["beyond_spread_at_both"] is False
    assert trend["published"]["gain"] == "grows" and trend["published"]["beyond_spread_at_both"] is True
    table = transfer.gain_table(found)
    assert "| mup+wsd+in16 | mup+in16 | 64-256 | -0.1500 | -0.0100 | shrinks | False |" in table
