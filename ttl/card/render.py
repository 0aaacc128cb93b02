"""Hugging Face model cards (README.md) for ttl runs, in the TeenyTinyLlama card's format.

The card of a `step-<N>/` export takes every figure from the run: its resolved config.yaml
and the trainer_state.json of each export. The training flow writes the final export's card;
`python -m ttl.card` writes any step's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ttl.card.tables import card_tables, markdown_table
from ttl.errors import TTLError
from ttl.generate import GENERATION_DEFAULTS
from ttl.model import build_model, count_parameters, llama_config
from ttl.rundir import (
    CONFIG,
    TRAINER_STATE,
    looks_like_hub_id,
    read_states,
    read_trainer_state,
    step_dir_name,
    step_dirs,
    step_of,
)

WIDGET_PROMPTS = (
    "A capital do Brasil é",
    "Era uma vez, em uma pequena cidade do interior,",
    "Para fazer um bolo de cenoura, você precisa de",
)


def _fmt(value, spec: str = ".6g") -> str:
    return "-" if value is None else format(value, spec)


def evaluations_table(states: list[dict]) -> str:
    """The card's Evaluations table (processed tokens, perplexity, kWh, kg CO2eq): one row per
    export whose perplexity was measured on its own weights at its own step."""
    return markdown_table((s["tokens"], s["val_ppl"], s.get("energy_kwh"), s.get("emissions_kg_co2eq"))
                          for s in states if s.get("val_ppl") is not None)


def dataset_name(cfg) -> str:
    """How the card names the training data: `data.dataset_id`, a Hub id, or the directory's
    name; never a path of the machine that trained."""
    if cfg.data.get("dataset_id"):
        return str(cfg.data.dataset_id)
    path = str(cfg.data.path)
    if looks_like_hub_id(path) and not Path(path).expanduser().exists():
        return path
    return Path(path.rstrip("/")).name or "local data"


def format_duration(seconds: float) -> str:
    """A duration in the unit that fits: seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def energy_settings(cfg) -> dict:
    """The emissions callback's settings of a run's config (older runs kept them in `energy`)."""
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, "callbacks.emissions") or OmegaConf.select(cfg, "energy") or {}
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def _front_matter(cfg, state: dict) -> str:
    energy = energy_settings(cfg)
    grams = state.get("emissions_kg_co2eq")
    matter = {
        "license": "apache-2.0",
        "datasets": [dataset_name(cfg)],
        "language": ["pt"],
        "metrics": ["perplexity"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["text-generation-inference", "ttl"],
        "widget": [{"text": p, "example_title": "Exemplo"} for p in WIDGET_PROMPTS],
        "inference": {"parameters": {k: v for k, v in GENERATION_DEFAULTS.items() if k != "do_sample"}},
        "co2_eq_emissions": {
            # The Hub's model-card specification counts emissions in grams.
            "emissions": None if grams is None else float(f"{grams * 1000:.8g}"),
            "source": "CodeCarbon",
            "training_type": "pre-training",
            "geographical_location": energy.get("geographical_location") or energy.get("country_iso_code"),
            "hardware_used": energy.get("hardware_used") or state.get("hardware") or "unknown",
        },
    }
    return "---\n" + yaml.safe_dump(matter, sort_keys=False, allow_unicode=True) + "---\n"


def intermediate_section(name: str, revisions: Sequence[str]) -> str:
    """The card's section on the intermediate checkpoints (the Hub branches `revisions`)."""
    if not revisions:
        return ""
    listed = ", ".join(f"`{r}`" for r in revisions)
    return f"""## Intermediate checkpoints

Every intermediate checkpoint of the run is a branch of this repository ({listed}):

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{name}", revision="{revisions[0]}")
model = AutoModelForCausalLM.from_pretrained("{name}", revision="{revisions[0]}")
```

"""


def benchmarks_section(run_dir: Path, step: int) -> str:
    """The card's benchmark tables for `step`, from `python -m ttl.evaluate harness` results in
    `<run_dir>/evaluation/` (TeenyTinyLlama's and Tucano's layout); empty when none were run."""
    tables = card_tables(run_dir, step)
    if tables is None:
        return ""
    return f"""
## Benchmarks

Scores (%) of this checkpoint on the benchmark tables of TeenyTinyLlama's and Tucano's model
cards, from `python -m ttl.evaluate harness suite=card` (EleutherAI's lm-evaluation-harness with
the prompts, shot counts and metrics of the harnesses those cards cite):

{tables}"""


def render_card(run_dir: Path, step_dir: Path, repo_id: str | None = None, revision: str | None = None,
                revisions: Sequence[str] = ()) -> str:
    """The README.md text of `step_dir`, from the run's config and exports.

    `revision`: the Hub branch this card is published on (its snippets load that revision);
    `revisions`: the branches of the intermediate checkpoints, listed on the main card.
    """
    config_path = run_dir / CONFIG
    if not config_path.is_file():
        raise TTLError(f"{config_path}: not found; run_dir must be a ttl run directory")
    cfg = OmegaConf.load(config_path)
    state_path = step_dir / TRAINER_STATE
    if not state_path.is_file():
        raise TTLError(f"{state_path}: not found; is {step_dir} a ttl step-<N> export?")
    state = read_trainer_state(step_dir)
    n_params = count_parameters(build_model(llama_config(OmegaConf.to_container(cfg.model)), "meta"))
    name = repo_id or str(step_dir)
    load_args = f'"{name}", revision="{revision}"' if revision else f'"{name}"'
    kg, kwh = state.get("emissions_kg_co2eq"), state.get("energy_kwh")
    energy = energy_settings(cfg)
    states = [s for s in read_states(run_dir) if s["step"] <= state["step"]]
    return f"""{_front_matter(cfg, state)}# {cfg.run_name} (step {state['step']:,})

## Model Summary

A small Llama language model for Brazilian Portuguese, pre-trained from scratch with
ttl, a Lightning + Hydra re-implementation of TeenyTinyLlama. Models of this size make it
affordable to study how a language model for a low-resource language learns: every
intermediate checkpoint of the run is published with its perplexity, energy and emissions.
This card describes the checkpoint at optimizer step {state['step']:,}; every figure below was
recorded by the training run itself.

## Details

- **Architecture:** decoder-only Transformer (Hugging Face `LlamaForCausalLM`), causal language modelling
- **Size:** {n_params:,} parameters
- **Context length:** {cfg.model.max_position_embeddings:,} tokens
- **Vocabulary:** {cfg.model.vocab_size:,} tokens
- **Dataset:** {dataset_name(cfg)}
- **Language:** Portuguese
- **Number of steps:** {state['step']:,} ({state['tokens']:,} tokens, {state['tokens_per_step']:,} per step)
- **Hardware:** {energy.get('hardware_used') or state.get('hardware') or 'unknown'}
- **Training time:** {format_duration(state.get('wall_time_s', 0))}
- **Emissions:** {_fmt(kg)} kg CO2eq ({energy.get('country_iso_code')})
- **Total energy consumption:** {_fmt(kwh)} kWh
- **Validation perplexity:** {_fmt(state.get('val_ppl'), '.4f')}
- **Config hash:** {state.get('config_hash') or '-'}

## Intended uses

Research on language models for low-resource languages: the intermediate checkpoints of a run
make controlled experiments possible (how capabilities and perplexity grow with tokens and
energy). Fine-tuning for your own use is allowed under the Apache 2.0 licence; assess the
risks and biases of the result yourself.

## Out-of-scope Use

This is a research artifact, not a product: do not deploy it where people read its output
unsupervised. It writes Brazilian Portuguese only, so it is no tool for translation or for
other languages, and it has not been tuned to follow instructions or hold a conversation
safely: it needs fine-tuning and an assessment of its own before any downstream use.

## Limitations

The model is small and trained on web and instruction text. It makes up facts, repeats
itself (keep the repetition penalty on), reproduces the biases and toxicity of its training
data, and understands little beyond Brazilian Portuguese. It is not a product: do not put it
in front of people without human moderation.

## Basic usage

With the `pipeline`:

```python
from transformers import pipeline

generator = pipeline("text-generation", model={load_args})
for completion in generator("A capital do Brasil é", num_return_sequences=2, max_new_tokens=100):
    print(completion["generated_text"])
```

With `AutoTokenizer` and `AutoModelForCausalLM`:

```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained({load_args})
model = AutoModelForCausalLM.from_pretrained({load_args})
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model.to(device).eval()

inputs = tokenizer("A capital do Brasil é", return_tensors="pt").to(device)
completions = model.generate(**inputs, num_return_sequences=2, max_new_tokens=100)
for completion in completions:
    print(tokenizer.decode(completion, skip_special_tokens=True))
```

The checkpoint's `generation_config.json` holds the sampling settings of the widget above
(repetition penalty 1.2, temperature 0.2, top-k 20, top-p 0.2, 150 new tokens).

{intermediate_section(name, revisions)}## Evaluations

Validation perplexity (token-weighted over the held-out split, measured on each checkpoint's
own weights at its own step), energy and emissions of the checkpoints that have one:

{evaluations_table(states)}
{benchmarks_section(run_dir, state["step"])}
## License

Apache License 2.0.

## Cite

This model follows the recipe of TeenyTinyLlama:

```bibtex
@misc{{correa24ttllama,
  title = {{TeenyTinyLlama: open-source tiny language models trained in Brazilian Portuguese}},
  author = {{Corr{{\\^e}}a, Nicholas Kluge and Falk, Sophia and Fatimah, Shiza and Sen, Aniket
            and De Oliveira, Nythamar}},
  journal = {{arXiv preprint arXiv:2401.16640}},
  year = {{2024}}
}}
```
"""


def write_card(run_dir: str | Path, step: int | None = None, repo_id: str | None = None,
               output: str | Path | None = None) -> Path:
    """Write the card of `step` (default: the latest export) and return its path."""
    run_dir = Path(run_dir)
    exports = step_dirs(run_dir)
    if not exports:
        raise TTLError(f"run_dir={run_dir}: no step-<N>/ exports there")
    if step is None:
        step_dir = exports[-1]
    else:
        step_dir = run_dir / step_dir_name(step)
        if not step_dir.is_dir():
            steps = ", ".join(str(step_of(p)) for p in exports)
            raise TTLError(f"step={step}: no {step_dir} (steps: {steps})")
    target = Path(output) if output else step_dir / "README.md"
    target.write_text(render_card(run_dir, step_dir, repo_id), encoding="utf-8")
    return target
