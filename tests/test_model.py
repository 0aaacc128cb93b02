"""ttl.model: exact TeenyTinyLlama parameter counts, FLOPs, config fields."""

import pytest

from ttl.cli import register_resolvers
from ttl.errors import TTLError
from ttl.model import (
    build_model,
    count_parameters,
    flops_per_token,
    llama_config,
    resolve_attn_implementation,
)
from ttl.train.config import model_preset


def model_cfg(name: str) -> dict:
    register_resolvers()
    return model_preset(name)


@pytest.mark.parametrize("name, expected", [("160m", 162_417_408), ("460m", 468_239_360)])
def test_exact_parameter_counts_on_meta_device(name, expected):
    model = build_model(llama_config(model_cfg(name)), device="meta")
    assert count_parameters(model) == expected
    assert next(model.parameters()).device.type == "meta"


def test_config_has_teenytinyllama_fields_and_no_cache():
    config = llama_config(model_cfg("160m"))
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 3)
    assert config.tie_word_embeddings is False
    assert config.use_cache is False
    # transformers 5 keeps rope_theta inside rope_parameters.
    assert config.rope_parameters["rope_theta"] == 10000.0
    assert config.max_position_embeddings == 2048


def test_flops_per_token_matches_the_mfu_convention():
    # 6N + 12 x layers x hidden x seq for the 160m model at seq 2048.
    assert flops_per_token(162_417_408, 12, 768, 2048) == 6 * 162_417_408 + 12 * 12 * 768 * 2048


@pytest.mark.parametrize("tied, expected", [(False, 162_417_408 - 32_000 * 768), (True, 137_841_408)])
def test_mfu_counts_every_parameter_but_the_input_embedding(tied, expected):
    """torchtitan's count: the input embedding is a lookup; tied, it is the head and counts once."""
    from ttl.model import build_model, count_parameters, matmul_parameters

    cfg = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12,
               intermediate_size=3072, vocab_size=32000, max_position_embeddings=2048,
               tie_word_embeddings=tied)
    model = build_model(llama_config(cfg), "meta")
    assert matmul_parameters(model) == expected
    assert count_parameters(model) == (137_841_408 if tied else 162_417_408)


def test_attention_auto_falls_back_to_sdpa_on_cpu():
    assert resolve_attn_implementation("auto", "cpu") == "sdpa"
    assert resolve_attn_implementation("eager", "cpu") == "eager"


def test_flash_attention_without_package_is_a_clear_error():
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(TTLError, match="flash-attn"):
            resolve_attn_implementation("flash_attention_2", "gpu")
    else:
        assert resolve_attn_implementation("flash_attention_2", "gpu") == "flash_attention_2"
