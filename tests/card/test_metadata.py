"""ttl.card.metadata: the front matter as ModelCardData, its model-index of EvalResults, the local
check of a card, and the refresh of a published card's model-index."""

from __future__ import annotations

import math

import huggingface_hub
import pytest
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import EntryNotFoundError
from huggingface_hub.repocard import RepoCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from ttl.card import metadata
from ttl.card.metadata import (
    KEY_ORDER,
    card_data,
    check_card,
    describe_refresh,
    front_matter,
    harness_results,
    merged_card,
    model_index_metadata,
    perplexity_results,
    push_model_index,
)
from ttl.card.results import HarnessRow
from ttl.errors import TTLError

STATES = [{"step": 10, "tokens": 40_960, "val_ppl": None},
          {"step": 20, "tokens": 81_920, "val_ppl": 966.1782},
          {"step": 30, "tokens": 122_880, "val_ppl": 789.58461234}]


def row(task, metric, value, shots=3, step=30):
    return HarnessRow(checkpoint=f"runs/x/step-{step}", revision=None, step=step, tokens=4096 * step,
                      task=task, metric=metric, value=value, stderr=None, samples=50, num_fewshot=shots)


ROWS = [row("ttl_lambada_pt", "acc", 0.2098, shots=0),   # out of the tables' order on purpose
        row("ttl_assin2_rte", "f1_macro", 0.5336, shots=15),
        row("ttl_assin2_rte", "acc", 0.9, shots=15),     # a metric no table shows
        row("ttl_assin2_sts", "pearson", float("nan"), shots=15),  # undefined: no result
        row("ttl_arc_pt", "acc_norm", 0.26153846, shots=25),
        row("ttl_enem", "acc", 0.5)]                    # not a card task


def data(results=None, kg=0.125):
    results = [*perplexity_results(STATES, "sample"), *harness_results(ROWS)] if results is None else results
    return card_data(model_name="tiny-pt", dataset="sample", emissions_kg=kg, location="Brazil",
                     hardware="CPU (2 cores)", eval_results=results)


def card_text(d: ModelCardData) -> str:
    return f"---\n{front_matter(d)}\n---\n# tiny-pt\n"


def test_one_perplexity_per_measured_export_with_the_trainer_states_value():
    results = perplexity_results(STATES, "sample")
    assert [r.metric_name for r in results] == ["perplexity at step 20 (81,920 tokens)",
                                                "perplexity at step 30 (122,880 tokens)"]
    assert [r.metric_value for r in results] == [966.1782, 789.58461234]  # not rounded
    for r in results:
        assert (r.task_type, r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type) == (
            "text-generation", "sample", "sample", "validation", "perplexity")


def test_harness_scores_in_percent_in_the_card_tables_order():
    results = harness_results(ROWS)
    described = [(r.dataset_type, r.dataset_name, r.metric_type, r.metric_value, r.dataset_args)
                 for r in results]
    assert described == [
        ("ttl_assin2_rte", "ASSIN2 RTE", "f1_macro", 53.36, {"num_few_shot": 15}),
        ("ttl_arc_pt", "ARC", "acc_norm", 26.15, {"num_few_shot": 25}),
        ("ttl_lambada_pt", "LAMBADA-PT", "acc", 20.98, {"num_few_shot": 0}),
    ]
    assert results[0].metric_name == "f1_macro (%) at step 30"
    # The value is the table's: 100 * the row's score, two decimals.
    for result in results:
        source = next(r for r in ROWS if r.task == result.dataset_type and r.metric == result.metric_type)
        assert result.metric_value == round(100 * source.value, 2)


def test_front_matter_keeps_teenytinyllamas_key_order_with_the_model_index_last():
    matter = yaml.safe_load(front_matter(data()))
    assert list(matter) == [*KEY_ORDER, "model-index"]
    assert matter["license"] == "apache-2.0" and matter["datasets"] == ["sample"]
    assert matter["language"] == ["pt"] and matter["metrics"] == ["perplexity"]
    assert matter["tags"] == ["text-generation-inference", "ttl"]
    assert [w["text"] for w in matter["widget"]][0] == "A capital do Brasil é"
    assert matter["inference"]["parameters"] == {"repetition_penalty": 1.2, "temperature": 0.2, "top_k": 20,
                                                 "top_p": 0.2, "max_new_tokens": 150}
    assert matter["co2_eq_emissions"] == {"emissions": 125.0, "source": "CodeCarbon",
                                          "training_type": "pre-training",
                                          "geographical_location": "Brazil", "hardware_used": "CPU (2 cores)"}
    # Without results: no model-index, and no stray model_name.
    assert list(yaml.safe_load(front_matter(data(results=[])))) == list(KEY_ORDER)


@pytest.mark.parametrize("kg", [0.125, 4.118344345e-05, 2.747690419e-05, 1.0 / 3])
def test_emissions_are_written_in_grams(kg):
    grams = yaml.safe_load(front_matter(data(kg=kg)))["co2_eq_emissions"]["emissions"]
    assert grams == pytest.approx(kg * 1000, rel=1e-12)
    assert yaml.safe_load(front_matter(data(kg=None)))["co2_eq_emissions"]["emissions"] is None


def test_the_model_index_reads_back_to_the_eval_results():
    d = data()
    name, results = model_index_to_eval_results(yaml.safe_load(front_matter(d))["model-index"])
    assert name == "tiny-pt"
    assert results == d.eval_results and len(results) == 5
    assert [r.metric_value for r in results] == [966.1782, 789.58461234, 53.36, 26.15, 20.98]
    # ModelCard parses the card to the same results.
    assert ModelCard(card_text(d)).data.eval_results == d.eval_results


def test_check_card_accepts_the_card_and_says_what_is_wrong_with_a_changed_one():
    d = data()
    text = card_text(d)
    assert isinstance(check_card(text, d), ModelCard)
    with pytest.raises(TTLError, match="does not read back"):
        check_card(text.replace("value: 26.15", "value: 26.2"), d)
    with pytest.raises(TTLError, match="front matter keys"):
        check_card(text.replace("license: apache-2.0\n", "") + "", d)
    with pytest.raises(TTLError, match="no YAML front matter"):
        check_card("# tiny-pt\n", d)
    infinite = data(results=[EvalResult(task_type="text-generation", dataset_type="sample",
                                        dataset_name="sample", metric_type="perplexity",
                                        metric_value=math.inf)])
    with pytest.raises(TTLError, match="without a finite value"):
        check_card(card_text(infinite), infinite)


PUBLISHED = """---
license: apache-2.0
datasets:
- sample
language:
- pt
model-index:
- name: published-name
  results:
  - task:
      type: text-generation
      name: Text Generation
    dataset:
      name: sample
      type: sample
      split: validation
    metrics:
    - type: perplexity
      value: 1000.0
      name: perplexity at step 20 (81,920 tokens)
  - task:
      type: text-generation
    dataset:
      name: Someone's benchmark
      type: someone/bench
    metrics:
    - type: acc
      value: 0.5
---
# The published card
"""


def test_merged_card_updates_matching_results_adds_new_ones_and_keeps_the_rest():
    local = data()
    merged = merged_card(PUBLISHED, model_index_metadata(local), "user/tiny-pt")
    results = merged.data.eval_results
    assert merged.data.model_name == "published-name"  # the published name stays
    assert [r.metric_name for r in results] == [
        "perplexity at step 20 (81,920 tokens)", None, "perplexity at step 30 (122,880 tokens)",
        "f1_macro (%) at step 30", "acc_norm (%) at step 30", "acc (%) at step 30"]
    assert [r.metric_value for r in results] == [966.1782, 0.5, 789.58461234, 53.36, 26.15, 20.98]
    # Only the model-index is pushed: the published card's other keys and body stay.
    assert merged.data.license == "apache-2.0" and "widget" not in merged.data
    assert merged.text == "# The published card\n"
    assert describe_refresh(ModelCard(PUBLISHED), merged) == \
        "model-index: 4 results added, 1 changed, 1 unchanged"
    assert ModelCard(PUBLISHED).data.eval_results[0].metric_value == 1000.0  # `published` is not changed


@pytest.mark.parametrize("published", [PUBLISHED, None])
def test_merged_card_is_what_huggingface_hubs_metadata_update_pushes(published, monkeypatch):
    # huggingface_hub's own metadata_update, with only its two network calls replaced: loading
    # the published README.md and pushing the result.
    pushed = {}

    def load(cls, repo_id, **_):
        if published is None:
            raise EntryNotFoundError("no README.md")
        return cls(published)

    def push_to_hub(self, repo_id, **kwargs):
        pushed.update(text=str(self), repo_id=repo_id, **kwargs)
        return "https://huggingface.co/user/tiny-pt/commit/abc"

    monkeypatch.setattr(ModelCard, "load", classmethod(load))
    monkeypatch.setattr(RepoCard, "push_to_hub", push_to_hub)
    metadata = model_index_metadata(data())
    huggingface_hub.metadata_update("user/tiny-pt", metadata, overwrite=True)
    assert pushed["repo_id"] == "user/tiny-pt"
    assert pushed["text"] == str(merged_card(published, metadata, "user/tiny-pt"))


def test_a_card_without_results_has_nothing_to_push():
    with pytest.raises(TTLError, match="no evaluation results"):
        model_index_metadata(data(results=[]))


def test_push_model_index_reads_the_card_then_pushes_on_that_commit(monkeypatch):
    calls = []
    monkeypatch.setattr(metadata, "read_published_card", lambda repo_id, token=None: ("c0ffee", PUBLISHED))
    monkeypatch.setattr(huggingface_hub, "metadata_update",
                        lambda repo_id, meta, **kwargs: calls.append((repo_id, meta, kwargs)) or "URL")
    local = data()
    summary = push_model_index("user/tiny-pt", local, token="hf_x", dry_run=True)
    assert summary == ("user/tiny-pt: model-index: 4 results added, 1 changed, 1 unchanged "
                       "(dry run: nothing pushed)")
    assert calls == []
    summary = push_model_index("user/tiny-pt", local, token="hf_x")
    assert summary.endswith("1 unchanged; URL")
    [(repo_id, meta, kwargs)] = calls
    assert repo_id == "user/tiny-pt" and meta == model_index_metadata(local)
    assert kwargs["overwrite"] is True and kwargs["parent_commit"] == "c0ffee" and kwargs["token"] == "hf_x"


def test_without_the_hub_a_push_says_it_cannot_reach_it():
    # The tests run with HF_HUB_OFFLINE=1: huggingface_hub's real client refuses to connect.
    with pytest.raises(TTLError, match="cannot reach the Hugging Face Hub to read user/tiny-pt"):
        push_model_index("user/tiny-pt", data(), dry_run=True)
