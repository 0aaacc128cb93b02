"""Hugging Face model cards (README.md) for ttl runs, in the TeenyTinyLlama card's format: every
figure comes from the run (config.yaml, the exports' trainer_state.json, the step's harness
results); the front matter from `ttl.card.metadata`, the prose from `template.md.j2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import jinja2
from huggingface_hub import ModelCard
from omegaconf import DictConfig, OmegaConf

from ttl.card.metadata import card_data, check_card, front_matter, harness_results, perplexity_results
from ttl.card.results import step_rows
from ttl.card.tables import card_markdown, evaluations_table
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

TEMPLATE = Path(__file__).with_name("template.md.j2")


@cache
def _template() -> jinja2.Template:
    # StrictUndefined: a variable the template names but the code does not give is an error,
    # not an empty string in a published card.
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=False,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     trim_blocks=True, lstrip_blocks=True)
    # `figure`: a value in a format spec, "-" when unknown; `thousands`: 122,880.
    environment.filters.update(figure=lambda value, spec=".6g": "-" if value is None else format(value, spec),
                               thousands="{:,}".format)
    return environment.get_template(TEMPLATE.name)


def dataset_name(cfg: DictConfig) -> str:
    """How the card names the training data: `data.dataset_id`, a Hub id, or the directory's
    name; never a path of the machine that trained."""
    if cfg.data.get("dataset_id"):
        return str(cfg.data.dataset_id)
    path = str(cfg.data.path)
    if looks_like_hub_id(path) and not Path(path).expanduser().exists():
        return path
    return Path(path.rstrip("/")).name or "local data"


def recipe_line(model: DictConfig) -> str:
    """The peak lr, the parametrization and what chose the recipe (older runs' configs lack the last two)."""
    mup = {k: model.get(k, 1) for k in ("base_width", "input_multiplier", "output_multiplier")}
    parametrization = ("µP (base width {base_width}, input multiplier {input_multiplier:g}, output "
                       "multiplier {output_multiplier:g})".format(**mup)
                       if model.get("parametrization") == "mup" else "standard parametrization")
    evidence = f". {model.recipe.evidence}" if model.recipe.get("evidence") else ""
    return f"peak learning rate {model.recipe.lr:g}, {parametrization}{evidence}"


def format_duration(seconds: float) -> str:
    """A duration in the unit that fits: seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def energy_settings(cfg: DictConfig) -> dict:
    """The emissions callback's settings of a run's config (older runs kept them in `energy`)."""
    node = OmegaConf.select(cfg, "callbacks.emissions") or OmegaConf.select(cfg, "energy") or {}
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def build_card(run_dir: str | Path, step_dir: str | Path, repo_id: str | None = None,
               revision: str | None = None, revisions: Sequence[str] = ()) -> ModelCard:
    """The model card of `step_dir` as a checked `huggingface_hub.ModelCard`. `repo_id`: the Hub
    repository its snippets load and its model-index names (default: the export's path, the run's
    name); `revision`: the branch it is published on; `revisions`: the branches it lists."""
    run_dir, step_dir = Path(run_dir), Path(step_dir)
    if not (run_dir / CONFIG).is_file():
        raise TTLError(f"{run_dir / CONFIG}: not found; run_dir must be a ttl run directory")
    if not (step_dir / TRAINER_STATE).is_file():
        raise TTLError(f"{step_dir / TRAINER_STATE}: not found; is {step_dir} a ttl step-<N> export?")
    cfg, state = OmegaConf.load(run_dir / CONFIG), read_trainer_state(step_dir)
    states = [s for s in read_states(run_dir) if s["step"] <= state["step"]]
    rows = step_rows(run_dir, state["step"])
    energy, dataset = energy_settings(cfg), dataset_name(cfg)
    hardware = energy.get("hardware_used") or state.get("hardware") or "unknown"
    data = card_data(
        model_name=repo_id.rstrip("/").split("/")[-1] if repo_id else str(cfg.run_name), dataset=dataset,
        emissions_kg=state.get("emissions_kg_co2eq"),
        location=energy.get("geographical_location") or energy.get("country_iso_code"), hardware=hardware,
        eval_results=[*perplexity_results(states, dataset), *harness_results(rows)])
    name = repo_id or str(step_dir)
    text = _template().render(
        card_data=front_matter(data), run_name=cfg.run_name, dataset=dataset, hardware=hardware,
        n_params=count_parameters(build_model(llama_config(OmegaConf.to_container(cfg.model)), "meta")),
        context_length=cfg.model.max_position_embeddings, vocab_size=cfg.model.vocab_size,
        step=state["step"], tokens=state["tokens"], tokens_per_step=state["tokens_per_step"],
        training_time=format_duration(state.get("wall_time_s", 0)), val_ppl=state.get("val_ppl"),
        emissions_kg=state.get("emissions_kg_co2eq"), country=energy.get("country_iso_code"),
        energy_kwh=state.get("energy_kwh"), config_hash=state.get("config_hash"), name=name,
        generation=GENERATION_DEFAULTS, recipe=recipe_line(cfg.model),
        load_args=f'"{name}", revision="{revision}"' if revision else f'"{name}"', revisions=list(revisions),
        evaluations_table=evaluations_table(states),
        benchmark_tables=card_markdown(rows) if rows else None,
    )
    return check_card(text, data)


def render_card(run_dir: str | Path, step_dir: str | Path, repo_id: str | None = None,
                revision: str | None = None, revisions: Sequence[str] = ()) -> str:
    """The README.md text of `step_dir` (`build_card`'s card as text)."""
    return str(build_card(run_dir, step_dir, repo_id, revision, revisions))


def find_step_dir(run_dir: str | Path, step: int | None = None) -> Path:
    """The export of `step` in `run_dir` (default: the latest); a TTLError naming the steps
    there when it is absent."""
    run_dir = Path(run_dir)
    exports = step_dirs(run_dir)
    if not exports:
        raise TTLError(f"run_dir={run_dir}: no step-<N>/ exports there")
    if step is None:
        return exports[-1]
    step_dir = run_dir / step_dir_name(step)
    if not step_dir.is_dir():
        steps = ", ".join(str(step_of(p)) for p in exports)
        raise TTLError(f"step={step}: no {step_dir} (steps: {steps})")
    return step_dir


def write_card(run_dir: str | Path, step: int | None = None, repo_id: str | None = None,
               output: str | Path | None = None) -> Path:
    """Write the card of `step` (default: the latest export) to `output` (default:
    `step-<N>/README.md`) and return its path."""
    step_dir = find_step_dir(run_dir, step)
    target = Path(output) if output else step_dir / "README.md"
    target.write_text(render_card(run_dir, step_dir, repo_id), encoding="utf-8")
    return target
