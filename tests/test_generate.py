"""ttl.generate: the model card's sampling settings, greedy decoding, prompts, reproducible with a
seed, streamed."""


import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from ttl.cli import command_config
from ttl.errors import TTLError
from ttl.generate import (
    GENERATION_DEFAULTS,
    GenerateConfig,
    generate,
    generate_text,
    generation_settings,
    main,
    read_prompts,
)

from .conftest import run_cli


def test_the_model_cards_settings_and_greedy_decoding():
    assert generation_settings() == GENERATION_DEFAULTS
    greedy = generation_settings(do_sample=False)
    assert greedy == {"do_sample": False, "repetition_penalty": 1.2, "max_new_tokens": 150}
    with pytest.raises(TTLError, match="temperature=0: must be positive when sampling"):
        generation_settings(temperature=0)
    with pytest.raises(TTLError, match="max_new_tokens=0: must be at least 1"):
        generation_settings(max_new_tokens=0)


def test_prompts_come_from_the_argument_then_the_files_lines(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("primeiro\n\n  \nsegundo\n", encoding="utf-8")
    assert read_prompts("zero", str(path)) == ["zero", "primeiro", "segundo"]
    with pytest.raises(TTLError, match="prompts_file=.*nope.txt: no such file"):
        read_prompts(None, str(tmp_path / "nope.txt"))
    with pytest.raises(TTLError, match="no prompt: give prompt=... or prompts_file=..."):
        read_prompts(None, None)


pytestmark = pytest.mark.slow

# Wide sampling, so that two seeds cannot plausibly agree on 30 tokens of a tiny model.
WIDE = dict(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=30)


@pytest.fixture(scope="module")
def final(quickstart_run):
    """The quickstart run's final checkpoint directory, model and tokenizer."""
    path = quickstart_run / "step-150"
    return path, AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_defaults_are_the_model_cards_sampling_settings():
    args = command_config(GenerateConfig)
    assert {k: args[k] for k in GENERATION_DEFAULTS} == GENERATION_DEFAULTS


def test_the_same_seed_gives_the_same_text_and_another_seed_another(final):
    _, model, tokenizer = final
    first = generate_text(model, tokenizer, "A capivara é", seed=7, **WIDE)
    again = generate_text(model, tokenizer, "A capivara é", seed=7, **WIDE)
    other = generate_text(model, tokenizer, "A capivara é", seed=8, **WIDE)
    assert first == again and first != other
    assert first.startswith("A capivara é") and len(first) > len("A capivara é") + 10


def test_output_streams_to_stdout_and_matches_the_returned_text(final, capsys, tmp_path):
    path, _, _ = final
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("O Brasil é\n\nEra uma vez\n", encoding="utf-8")
    texts = generate({"checkpoint": str(path), "prompts_file": str(prompts), "seed": 3,
                      "max_new_tokens": 15})
    out = capsys.readouterr().out
    assert [t.split()[0] for t in texts] == ["O", "Era"]
    # The streamer prints each text as it is generated, a blank line between prompts.
    assert out.strip() == "\n\n".join(texts)


def test_the_command_line_is_reproducible_across_processes(final):
    path, model, tokenizer = final
    # A prompt with ": " and "#", which a key=value grammar would misread, passes verbatim.
    prompt = "Era uma vez: um # rei"
    wide = [f"{key}={value}" for key, value in WIDE.items()]
    result = run_cli(["-m", "ttl.generate", f"checkpoint={path}", f"prompt={prompt}", "seed=5", *wide],
                     path)
    assert result.returncode == 0, result.stderr[-2000:]
    here = generate_text(model, tokenizer, prompt, seed=5, **WIDE)
    assert result.stdout.strip() == here.strip()
    assert here.startswith(prompt) and len(here) > len(prompt) + 5


@pytest.mark.parametrize("args, message", [
    (["checkpoint=CKPT"], "no prompt: give prompt=... or prompts_file=..."),
    (["checkpoint=CKPT", "prompts_file=/nonexistent.txt"], "prompts_file=/nonexistent.txt: no such file"),
    (["checkpoint=CKPT", "prompt=x", "temperature=0"], "temperature=0.0: must be positive"),
    (["prompt=x"], "checkpoint is required"),
    (["checkpoint=/nonexistent/ckpt", "prompt=x"], "checkpoint=/nonexistent/ckpt"),
])
def test_bad_arguments_fail_with_one_line(final, args, message, capsys):
    path, _, _ = final
    assert main([a.replace("CKPT", str(path)) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
