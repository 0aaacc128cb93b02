"""ttl.cli: what every command's Hydra shell shares."""

import dataclasses
from collections.abc import Callable

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ttl.cli import command_config, first_missing, quote_free_text, schema
from ttl.errors import TTLError
from ttl.generate import GenerateConfig


@pytest.mark.parametrize("prompt", ["A capivara é", "Olá, mundo", "Era uma vez: um # rei", "it's \\ fine",
                                    "both ' and \"", "ends with \\"])
def test_free_text_reaches_hydra_exactly_as_typed(prompt):
    [arg] = quote_free_text([f"prompt={prompt}"], ("prompt",))
    assert OverridesParser.create().parse_overrides([arg])[0].value() == prompt
    assert quote_free_text(["seed=3", "prompt='kept'"], ("prompt",)) == ["seed=3", "prompt='kept'"]


def test_values_are_typed_by_the_commands_dataclass():
    cfg = command_config(GenerateConfig, {"checkpoint": "x", "top_k": "5"})
    assert cfg.top_k == 5 and cfg.temperature == 0.2 and cfg.prompt is None
    with pytest.raises(TTLError, match=r"top_k='many': Value 'many' of type 'str' could not be converted"):
        command_config(GenerateConfig, {"top_k": "many"})
    with pytest.raises(TTLError, match="unknown key 'top_kk'"):
        command_config(GenerateConfig, {"top_kk": 5})


def scheduled(optimizer, warmup: int, peak: float = 1e-3, names: list[str] | None = None,
              betas: tuple[float, float] = (0.9, 0.95), fn: Callable | None = None):
    return {"optimizer": optimizer, "warmup": warmup, "peak": peak, "names": names, "betas": betas}


def test_a_schema_is_the_signature_typed_and_instantiable():
    node = schema(scheduled, partial=True, exclude=("optimizer",))
    fields = {f.name: f for f in dataclasses.fields(node)}
    assert list(fields) == ["_target_", "_partial_", "warmup", "peak", "names", "betas", "fn"]
    cfg = OmegaConf.structured(node)
    assert cfg._target_ == "tests.test_cli.scheduled" and cfg.peak == 1e-3 and cfg.betas == [0.9, 0.95]
    assert OmegaConf.is_missing(cfg, "warmup")  # no default in the signature: required
    with pytest.raises(TTLError, match="warmup is required"):
        first_missing(cfg)
    cfg.warmup = "7"  # typed by the signature's hint: the string becomes an int
    assert cfg.warmup == 7
    with pytest.raises(Exception, match="peak"):
        cfg.peak = "fast"
    # A Callable cannot be checked by OmegaConf: it is Any, and instantiate still passes it on.
    built = instantiate(cfg, fn=None)(optimizer="opt")
    assert (built["optimizer"], built["warmup"], built["peak"], built["names"]) == ("opt", 7, 1e-3, None)
    assert list(built["betas"]) == [0.9, 0.95]


def test_a_command_returns_its_exit_status_in_process(capsys):
    from ttl.card.__main__ import main

    assert main([]) == 2
    assert capsys.readouterr().err.strip() == (
        "ttl.card: error: run_dir is required: python -m ttl.card run_dir=runs/NAME")
    assert main(["nonsense=1"]) == 1  # Hydra's error for a key the config lacks
