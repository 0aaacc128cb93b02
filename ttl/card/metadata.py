"""The model card's front matter (`huggingface_hub.ModelCardData` in TeenyTinyLlama's key order,
then its `model-index`; docs/publishing.md), its local check and the refresh of a published
card's `model-index`. `ModelCard.validate()` posts the card to the Hub, so a rendered card is
checked locally (`check_card`); the Hub validates when a card is pushed (`metadata_update`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import CardData, model_index_to_eval_results

from ttl.card.results import HarnessRow
from ttl.card.tables import CARD_TABLES
from ttl.errors import TTLError, reason
from ttl.generate import GENERATION_DEFAULTS

WIDGET_PROMPTS = (
    "A capital do Brasil é",
    "Era uma vez, em uma pequena cidade do interior,",
    "Para fazer um bolo de cenoura, você precisa de",
)

# TeenyTinyLlama's card lists its keys in this order (ModelCardData's own order differs);
# `model-index` comes last.
KEY_ORDER = ("license", "datasets", "language", "metrics", "library_name", "pipeline_tag", "tags",
             "widget", "inference", "co2_eq_emissions")
MODEL_INDEX = "model-index"

TASK = {"task_type": "text-generation", "task_name": "Text Generation"}


def perplexity_results(states: Sequence[dict], dataset: str) -> list[EvalResult]:
    """One result per export in `states` (trainer_state.json dicts) whose perplexity was
    measured, in the given order; the value is the state's `val_ppl`."""
    results = []
    for state in states:
        if state.get("val_ppl") is None:
            continue
        tokens = state.get("tokens")
        at = f"step {state['step']:,}" + ("" if tokens is None else f" ({tokens:,} tokens)")
        results.append(EvalResult(**TASK, dataset_type=dataset, dataset_name=dataset,
                                  dataset_split="validation", metric_type="perplexity",
                                  metric_value=float(state["val_ppl"]), metric_name=f"perplexity at {at}"))
    return results


def harness_results(rows: Sequence[HarnessRow]) -> list[EvalResult]:
    """One result per score of the card's benchmark tables in `rows` (one checkpoint's harness
    rows), in the tables' column order; scores in % with two decimals. A score that is not a
    finite number (an undefined correlation) is left out: it is no result."""
    results = []
    for columns in CARD_TABLES.values():
        for column in columns:
            # The row the table's cell shows (`CardColumn.reads`: the column's task, or the
            # offline task that stands in for it); the result names the task that ran.
            row = next((r for r in rows if column.reads(r)), None)
            if row is None or not math.isfinite(row.value):
                continue
            at = "" if row.step is None else f" at step {row.step:,}"
            results.append(EvalResult(  # the shot count in `args`, as the Open PT LLM Leaderboard has it
                **TASK, dataset_type=row.task, dataset_name=column.title,
                dataset_args=None if row.num_fewshot is None else {"num_few_shot": row.num_fewshot},
                metric_type=row.metric, metric_name=f"{row.metric} (%){at}",
                metric_value=round(100 * row.value, 2)))
    return results


def card_data(*, model_name: str, dataset: str, emissions_kg: float | None, location: str | None,
              hardware: str, eval_results: Sequence[EvalResult] = ()) -> ModelCardData:
    """The front matter of a card (`emissions_kg` is written in grams, as the Hub counts them)."""
    return ModelCardData(
        license="apache-2.0", datasets=[dataset], language=["pt"], metrics=["perplexity"],
        library_name="transformers", pipeline_tag="text-generation",
        tags=["text-generation-inference", "ttl"],
        # ModelCardData writes model_name only inside the model-index (a card without results
        # would otherwise get a stray `model_name` key).
        model_name=model_name if eval_results else None,
        eval_results=list(eval_results) or None,
        widget=[{"text": p, "example_title": "Exemplo"} for p in WIDGET_PROMPTS],
        inference={"parameters": {k: v for k, v in GENERATION_DEFAULTS.items() if k != "do_sample"}},
        co2_eq_emissions={
            # The Hub's model-card specification counts emissions in grams (12 significant
            # digits: kg * 1000 without the float noise of the product).
            "emissions": None if emissions_kg is None else float(f"{emissions_kg * 1000:.12g}"),
            "source": "CodeCarbon",
            "training_type": "pre-training",
            "geographical_location": location,
            "hardware_used": hardware,
        },
    )


def front_matter(data: ModelCardData) -> str:
    """The YAML of `data` (no `---` lines), in TeenyTinyLlama's key order, `model-index` last."""
    return data.to_yaml(original_order=list(KEY_ORDER))


def check_card(text: str, data: ModelCardData) -> ModelCard:
    """The card `text` as a `ModelCard`, once checked against the `data` it was rendered from (a
    TTLError says what is wrong)."""
    match = REGEX_YAML_BLOCK.search(text)
    if match is None or not text.startswith("---"):
        raise TTLError("model card: no YAML front matter at the top of the card")
    matter = yaml.safe_load(match.group(2)) or {}
    # The keys in the order `front_matter` writes them: KEY_ORDER's, the others, the model-index.
    order = {k: i for i, k in enumerate(KEY_ORDER)}
    expected = sorted(data.to_dict(), key=lambda k: (k == MODEL_INDEX, order.get(k, len(order))))
    if list(matter) != expected:
        raise TTLError(f"model card: front matter keys {list(matter)}, expected {expected}")
    try:
        card = ModelCard(text)
    except ValueError as error:
        raise TTLError(f"model card: huggingface_hub cannot read its front matter ({error})") from error
    if data.eval_results:
        if MODEL_INDEX not in matter:
            raise TTLError("model card: evaluation results but no model-index")
        name, results = model_index_to_eval_results(matter[MODEL_INDEX])
        if name != data.model_name or results != data.eval_results:
            raise TTLError("model card: its model-index does not read back to the card's evaluation results")
        bad = [r.metric_name for r in results
               if not isinstance(r.metric_value, int | float) or not math.isfinite(r.metric_value)]
        if bad:
            raise TTLError(f"model card: results without a finite value: {', '.join(map(str, bad))}")
    elif MODEL_INDEX in matter:
        raise TTLError("model card: a model-index without evaluation results")
    return card


def model_index_metadata(data: ModelCardData) -> dict[str, Any]:
    """The metadata a refresh pushes: `{"model-index": ...}` of `data` (the other keys of the
    published card stay as they are). A TTLError when `data` has no evaluation result."""
    model_index = data.to_dict().get(MODEL_INDEX)
    if not model_index:
        raise TTLError("the card has no evaluation results (no validation perplexity, no harness "
                       "scores of its step): nothing to push")
    return {MODEL_INDEX: model_index}


def merged_card(published: str | None, metadata: Mapping[str, Any], repo_id: str) -> ModelCard:
    """The card that `huggingface_hub.metadata_update(repo_id, metadata, overwrite=True)` leaves
    on the Hub when the published README.md is `published` (None: the repository has none),
    computed without the network by the same rules: every key of `metadata` replaces the
    published one; of the `model-index` results, one that describes the same metric as a
    published one (`EvalResult.is_equal_except_value`: same task, dataset, split, args and
    metric name) gives it its new value, the others are appended; published results that
    `metadata` lacks stay, and so does the published model name."""
    metadata = copy.deepcopy(dict(metadata))
    if published is None:
        card = ModelCard.from_template(CardData())
    else:
        try:
            card = ModelCard(published)
        except ValueError as error:
            raise TTLError(f"{repo_id}: its README.md's front matter cannot be read ({error})") from error
    for key, value in metadata.items():
        if key != MODEL_INDEX:
            card.data[key] = value
            continue
        if "name" not in value[0]:
            value[0]["name"] = repo_id
        model_name, new_results = model_index_to_eval_results(value)
        if card.data.eval_results is None:
            card.data.eval_results = new_results
            card.data.model_name = model_name
            continue
        for new in new_results:
            matches = [existing for existing in card.data.eval_results if new.is_equal_except_value(existing)]
            for existing in matches:
                existing.metric_value = new.metric_value
                if existing.verified is True:
                    existing.verify_token = new.verify_token
            if not matches:
                card.data.eval_results.append(new)
    return card


def describe_refresh(before: ModelCard | None, after: ModelCard) -> str:
    """What a refresh changes in a `model-index`: results added, values changed, unchanged."""
    old = list((before.data.eval_results if before is not None else None) or [])
    added = changed = same = 0
    for result in after.data.eval_results or []:
        match = next((r for r in old if r.is_equal_except_value(result)), None)
        if match is None:
            added += 1
        elif match.metric_value != result.metric_value:
            changed += 1
        else:
            same += 1
    return f"model-index: {added} results added, {changed} changed, {same} unchanged"


def read_published_card(repo_id: str, token: str | None = None) -> tuple[str, str]:
    """(commit, README.md text) of `main` of the Hub model repository `repo_id`. A TTLError when
    the Hub cannot be reached or the repository has no card (a refresh updates a card that
    `python -m ttl.publish` pushed; it does not create one)."""
    from huggingface_hub import HfApi, errors

    api = HfApi(token=token)
    try:
        commit = api.model_info(repo_id).sha
        path = api.hf_hub_download(repo_id, "README.md", revision=commit)
    except errors.RepositoryNotFoundError as error:
        raise TTLError(f"push_metadata_to={repo_id}: no such model repository (or no access)") from error
    except errors.RemoteEntryNotFoundError as error:
        raise TTLError(f"push_metadata_to={repo_id}: the repository has no README.md; publish the run "
                       "first (python -m ttl.publish)") from error
    except (errors.LocalEntryNotFoundError, OSError, ValueError) as error:  # offline, no network, refused
        raise TTLError(f"cannot reach the Hugging Face Hub to read {repo_id} ({reason(error)})") from error
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return commit, handle.read()


def push_model_index(repo_id: str, data: ModelCardData, *, token: str | None = None,
                     dry_run: bool = False) -> str:
    """Write the `model-index` of `data` into the card on `main` of `repo_id` with
    `huggingface_hub.metadata_update(..., overwrite=True)`; returns a summary of what changed
    (with the commit's URL). `dry_run`: read and summarise, push nothing.

    The published card is read first: a repository without one is refused (metadata_update
    would make one from its default template), and the push is a commit on the revision read
    (`parent_commit`), so it fails rather than merge into a card changed meanwhile. Only
    `main`: metadata_update reads the card of `main` whatever revision it pushes to."""
    from huggingface_hub import metadata_update

    metadata = model_index_metadata(data)
    commit, text = read_published_card(repo_id, token)
    summary = f"{repo_id}: " + describe_refresh(ModelCard(text), merged_card(text, metadata, repo_id))
    if dry_run:
        return f"{summary} (dry run: nothing pushed)"
    try:
        url = metadata_update(repo_id, metadata, overwrite=True, token=token, parent_commit=commit,
                              commit_message="ttl: refresh the model-index")
    except ValueError as error:  # the Hub's validation refused the card
        raise TTLError(f"the Hub refused the card of {repo_id}: {error}") from error
    except (OSError, RuntimeError) as error:
        raise TTLError(f"pushing the model-index to {repo_id} failed ({reason(error)})") from error
    return f"{summary}; {url}"

