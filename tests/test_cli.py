"""ttl.cli: what every command's Hydra shell shares."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from ttl.cli import command_config, invoke, quote_free_text, typed
from ttl.errors import TTLError
from ttl.generate import GenerateArgs


@pytest.mark.parametrize("prompt", ["A capivara é", "Olá, mundo", "Era uma vez: um # rei", "it's \\ fine",
                                    "both ' and \"", "ends with \\"])
def test_free_text_reaches_hydra_exactly_as_typed(prompt):
    [arg] = quote_free_text([f"prompt={prompt}"], ("prompt",))
    assert OverridesParser.create().parse_overrides([arg])[0].value() == prompt
    assert quote_free_text(["seed=3", "prompt='kept'"], ("prompt",)) == ["seed=3", "prompt='kept'"]


def test_values_are_typed_by_the_commands_schema():
    cfg = typed(command_config("generate", {"checkpoint": "x", "top_k": "5"}), GenerateArgs)
    assert cfg.top_k == 5 and cfg.temperature == 0.2 and cfg.prompt is None
    with pytest.raises(TTLError, match=r"top_k='many': Value 'many' of type 'str' could not be converted"):
        typed(command_config("generate", {"top_k": "many"}), GenerateArgs)


def test_a_command_returns_its_exit_status_in_process(capsys):
    from ttl.card.__main__ import _hydra_main

    assert invoke(_hydra_main, []) == 2
    assert capsys.readouterr().err.strip() == (
        "ttl.card: error: run_dir is required: python -m ttl.card run_dir=runs/NAME")
    assert invoke(_hydra_main, ["nonsense=1"]) == 1  # Hydra's error for a key the config lacks
