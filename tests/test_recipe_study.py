"""experiments/recipe_study/study.py: held-out halves never trained on, seed statistics, the
"beyond the seed spread" rule and the choice of winners."""

import importlib.util
import math
import statistics
import sys

import pytest
import torch

from ttl.data.sources import resolve_source

from .conftest import ROOT, SHARED_DATA

LAYOUT = SHARED_DATA / "pt-corpus-instruct-layout"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("study", ROOT / "experiments" / "recipe_study" / "study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def row(arm, seed, selection, report):
    half = lambda loss: {"loss": loss, "bits_per_byte": loss / 2}  # noqa: E731
    return {"arm": arm, "seed": seed, "scores": {"selection": half(selection), "report": half(report),
                                                  "wall_time_s": 10.0, "tokens": 4096, "parameters": 7}}


def test_arms_are_named_by_their_switches_and_other_changes(study):
    shared = ["experiment=recipe_study", "data.path=/d", "seed=2", "run_name=x"]
    assert study.arm_of(shared) == "published"
    assert study.arm_of([*shared, "recipe_switch=beta2"]) == "beta2"
    assert study.arm_of([*shared, "recipe_switch=[beta2,lr_floor]"]) == "beta2+lr_floor"
    assert study.arm_of([*shared, "recipe_switch=z_loss", "model.recipe.max_steps=280"]) == \
        "z_loss model.recipe.max_steps=280"


def test_differences_beyond_the_spread_need_ranges_that_do_not_overlap(study):
    rows = [row("published", s, 6.0 + d, 6.1 + d) for s, d in ((1, 0.0), (2, 0.02), (3, 0.04))]
    rows += [row("beta2", s, 5.9 + d, 6.0 + d) for s, d in ((1, 0.0), (2, 0.01), (3, 0.03))]  # below all
    rows += [row("tied", s, 5.97 + d, 6.07 + d) for s, d in ((1, 0.0), (2, 0.02), (3, 0.04))]  # overlaps
    rows += [row("lr_floor", s, 5.8, 5.9) for s in (1, 2, 3)]
    rows += [row("wsd", s, 5.85, 5.95) for s in (1, 2, 3)]
    arms = study.aggregate(rows)
    base = arms["published"]["report_loss"]
    assert base["mean"] == pytest.approx(6.12)
    assert base["sd"] == pytest.approx(statistics.stdev([6.1, 6.12, 6.14]))
    assert arms["beta2"]["report_loss_delta"] == pytest.approx((6.0 + 6.01 + 6.03) / 3 - 6.12)
    assert arms["beta2"]["report_loss_beyond_spread"] and not arms["tied"]["report_loss_beyond_spread"]
    beta2 = arms["beta2"]
    assert beta2["report_bits_per_byte_delta"] == pytest.approx(beta2["report_loss_delta"] / 2)
    # lr_floor and wsd are two schedules: the combination takes the better one only.
    assert study.winners(arms) == ["beta2", "lr_floor"]


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
