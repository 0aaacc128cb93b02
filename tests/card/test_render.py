"""ttl.card.render: the card of an export, its front matter from ModelCardData and its body
from template.md.j2, every figure from the run directory."""

from __future__ import annotations

import re

import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from ttl.card.metadata import KEY_ORDER
from ttl.card.render import TEMPLATE, build_card, evaluations_table, render_card, write_card
from ttl.card.results import step_rows
from ttl.card.tables import card_markdown
from ttl.errors import TTLError
from ttl.rundir import read_states

from .conftest import STATES, make_run

SECTIONS = ["## Model Summary", "## Details", "## Intended uses", "## Out-of-scope Use", "## Limitations",
            "## Basic usage", "## Intermediate checkpoints", "## Evaluations", "## Benchmarks", "## License",
            "## Cite"]


def split(text: str) -> tuple[dict, str]:
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def test_the_template_ships_in_the_package():
    assert TEMPLATE.name == "template.md.j2" and TEMPLATE.is_file()


def test_the_main_card_has_every_section_in_order_and_the_runs_figures(card_run):
    text = render_card(card_run, card_run / "step-30", "user/tiny-pt",
                       revisions=["step10", "step20", "step30"])
    _, body = split(text)
    assert re.findall(r"^## .*$", body, flags=re.M) == SECTIONS
    assert body.startswith("# tiny-pt (step 30)\n")
    details = dict(re.findall(r"^- \*\*(.+?):\*\* (.*)$", body, flags=re.M))
    assert details == {
        "Architecture": "decoder-only Transformer (Hugging Face `LlamaForCausalLM`), causal language "
                        "modelling",
        "Size": "393,536 parameters", "Context length": "128 tokens", "Vocabulary": "2,048 tokens",
        "Dataset": "sample", "Language": "Portuguese",
        # a config saved before µP names no parametrization: the standard one
        "Recipe": "peak learning rate 0.002, standard parametrization",
        "Number of steps": "30 (122,880 tokens, 4,096 per step)",
        "Hardware": "CPU (2 cores)", "Training time": "55 seconds", "Emissions": "0.125 kg CO2eq (BRA)",
        "Total energy consumption": "0.000418752 kWh", "Validation perplexity": "789.5846",
        "Config hash": "e250ba7d2530"}
    assert 'pipeline("text-generation", model="user/tiny-pt")' in body
    assert 'AutoModelForCausalLM.from_pretrained("user/tiny-pt")' in body
    assert "(repetition penalty 1.2, temperature 0.2, top-k 20, top-p 0.2, 150 new tokens)" in body
    assert "branch of this repository (`step10`, `step20`, `step30`):" in body
    assert 'from_pretrained("user/tiny-pt", revision="step10")' in body
    states = read_states(card_run)
    assert evaluations_table(states) in body
    assert card_markdown(step_rows(card_run, 30)) in body
    assert "| step-30 | 122.9K | 53.36 | nan |" in body  # the table shows what ran, NaN included
    assert "@misc{correa24ttllama," in body and "Corr{\\^e}a" in body
    assert "{{" not in text and "{%" not in text and "\n\n\n" not in text
    assert text.endswith("}\n```\n")


def test_a_mup_runs_card_states_its_multipliers_and_the_evidence_its_recipe_carries(card_run):
    config = yaml.safe_load((card_run / "config.yaml").read_text())
    config["model"] |= {"parametrization": "mup", "base_width": 768, "input_multiplier": 16.0,
                        "output_multiplier": 1.0}
    config["model"]["recipe"] |= {"lr": 1.2e-3, "evidence": "Chosen on width proxies."}
    (card_run / "config.yaml").write_text(yaml.safe_dump(config))
    _, body = split(render_card(card_run, card_run / "step-30"))
    assert ("- **Recipe:** peak learning rate 0.0012, µP (base width 768, input multiplier 16, output "
            "multiplier 1). Chosen on width proxies.\n") in body


def test_the_front_matter_is_modelcarddata_with_a_model_index_of_the_runs_results(card_run):
    card = build_card(card_run, card_run / "step-30", "user/tiny-pt")
    matter, _ = split(str(card))
    assert list(matter) == [*KEY_ORDER, "model-index"]
    assert matter["datasets"] == ["sample"]  # a name, never the training machine's path
    assert matter["co2_eq_emissions"]["emissions"] == 0.125 * 1000
    assert matter["co2_eq_emissions"]["geographical_location"] == "Brazil"
    name, results = model_index_to_eval_results(matter["model-index"])
    assert name == "tiny-pt" and results == card.data.eval_results
    perplexities = {r.metric_name: r.metric_value for r in results if r.metric_type == "perplexity"}
    assert perplexities == {"perplexity at step 20 (81,920 tokens)": STATES[20]["val_ppl"],
                            "perplexity at step 30 (122,880 tokens)": STATES[30]["val_ppl"]}
    scores = {(r.dataset_name, r.metric_type): r.metric_value for r in results
              if r.metric_type != "perplexity"}
    # The percentages of the card's tables; ASSIN2 STS's undefined pearson is no result.
    assert scores == {("ASSIN2 RTE", "f1_macro"): 53.36, ("ARC", "acc_norm"): 26.15,
                      ("CALAME-PT", "acc"): 46.72, ("LAMBADA-PT", "acc"): 20.98}
    # What the file holds is what ModelCard reads back.
    assert ModelCard(str(card)).data.eval_results == results


def test_an_earlier_export_lists_the_perplexities_up_to_its_step_and_no_benchmarks(card_run):
    text = render_card(card_run, card_run / "step-20", "user/tiny-pt", revision="step20")
    matter, body = split(text)
    _, results = model_index_to_eval_results(matter["model-index"])
    assert [r.metric_name for r in results] == ["perplexity at step 20 (81,920 tokens)"]
    assert "## Benchmarks" not in body and "## Intermediate checkpoints" not in body
    assert 'from_pretrained("user/tiny-pt", revision="step20")' in body
    assert "\n\n\n" not in text


def test_an_export_without_any_result_has_no_model_index(card_run):
    text = render_card(card_run, card_run / "step-10")
    matter, body = split(text)
    assert list(matter) == list(KEY_ORDER)  # no model-index, no stray model_name
    assert "- **Validation perplexity:** -" in body
    assert f'model="{card_run / "step-10"}"' in body  # no repo_id: the export's path


def test_write_card_writes_the_latest_export_or_refuses_a_missing_step(tmp_path):
    run = make_run(tmp_path, harness=False)
    path = write_card(run)
    assert path == run / "step-30" / "README.md"
    assert "## Benchmarks" not in path.read_text()
    with pytest.raises(TTLError, match=r"step=7: no .* \(steps: 10, 20, 30\)"):
        write_card(run, 7)
    with pytest.raises(TTLError, match="no step-<N>/ exports"):
        write_card(tmp_path)
