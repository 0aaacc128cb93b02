"""Build Hugging Face `LlamaForCausalLM` from a `model/` config; count parameters and FLOPs."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ttl.errors import TTLError

# model/ keys that are not LlamaConfig fields (µP changes init and learning rates, not the architecture).
_NON_ARCHITECTURE_KEYS = ("name", "recipe", "parametrization", "base_width", "input_multiplier",
                          "output_multiplier")
# TeenyTinyLlama's special token ids: <unk> <s> </s> <pad>.
SPECIAL_IDS = {"unk": 0, "bos": 1, "eos": 2, "pad": 3}


def resolve_attn_implementation(requested: str, accelerator: str) -> str:
    """Map `auto` to flash_attention_2 when flash-attn is installed on a GPU run, else sdpa."""
    if requested != "auto":
        if requested == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            raise TTLError("hardware.attn_implementation=flash_attention_2 needs the flash-attn package "
                           "(pip install -e '.[gpu]'); use sdpa or auto instead")
        return requested
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def llama_config(model_cfg: Mapping[str, Any], attn_implementation: str = "sdpa") -> LlamaConfig:
    """A `LlamaConfig` from a model/ config, with TeenyTinyLlama's special ids. `use_cache=False`:
    with it on, transformers ignores reset position ids and lets packed documents attend to each
    other (see PITFALLS); training never needs the cache."""
    fields = {k: v for k, v in model_cfg.items() if k not in _NON_ARCHITECTURE_KEYS}
    config = LlamaConfig(**fields, bos_token_id=SPECIAL_IDS["bos"], eos_token_id=SPECIAL_IDS["eos"],
                         pad_token_id=SPECIAL_IDS["pad"], attention_bias=False, mlp_bias=False,
                         use_cache=False)
    config._attn_implementation = attn_implementation
    return config


def build_model(config: LlamaConfig, device: str | torch.device | None = None) -> LlamaForCausalLM:
    """A freshly initialised `LlamaForCausalLM` (on `device`; "meta" builds no weights)."""
    with torch.device(device) if device is not None else nullcontext():
        return LlamaForCausalLM(config)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())


def matmul_parameters(model: torch.nn.Module) -> int:
    """Parameters that take part in matrix products: all but the input embedding, a table lookup
    that MFU leaves out (torchtitan's count); tied to the output head, it counts once."""
    total = count_parameters(model)
    if getattr(model.config, "tie_word_embeddings", False):
        return total
    return total - model.get_input_embeddings().weight.numel()


def flops_per_token(n_params: int, num_layers: int, hidden_size: int, seq_len: int) -> int:
    """Training FLOPs per token: 6N for the weights plus 12 x layers x hidden x seq for attention.
    ttl logs MFU with N = `matmul_parameters`; every parameter gives earlier figures' count
    (nanoGPT's with untied embeddings: about 12% more for the 160m model)."""
    return 6 * n_params + 12 * num_layers * hidden_size * seq_len
