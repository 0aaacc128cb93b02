"""Sampling text from a checkpoint: the model card's settings and one function that generates.

Everything that samples goes through here: `python -m ttl.generate`, the W&B sample tables of
`ttl.callbacks.samples`, the exports' generation_config.json, the model card's widget settings
and the chat fine-tuning export.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from ttl.errors import TTLError

# The TeenyTinyLlama model card's sampling settings.
GENERATION_DEFAULTS = dict(
    do_sample=True,
    repetition_penalty=1.2,
    temperature=0.2,
    top_k=20,
    top_p=0.2,
    max_new_tokens=150,
)
# Keys that only mean something when sampling (dropped for greedy decoding).
SAMPLING_KEYS = ("repetition_penalty", "temperature", "top_k", "top_p")


def read_prompts(prompt: str | None, prompts_file: str | None, usage: str = "") -> list[str]:
    """`prompt` (if given) followed by the non-blank lines of `prompts_file` (if given)."""
    prompts = [prompt] if prompt else []
    if prompts_file:
        path = Path(prompts_file).expanduser()
        if not path.is_file():
            raise TTLError(f"prompts_file={prompts_file}: no such file")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            raise TTLError(f"prompts_file={prompts_file}: not valid UTF-8 ({error.reason})") from error
        prompts += [line for line in lines if line.strip()]
    if not prompts:
        raise TTLError(f"no prompt: give prompt=... or prompts_file=...{f' ({usage})' if usage else ''}")
    return prompts


def generation_settings(**overrides) -> dict:
    """The model card's sampling settings with `overrides`; sampling-only keys are dropped
    for greedy decoding (transformers warns about them otherwise)."""
    settings = {**GENERATION_DEFAULTS, **overrides}
    if settings["max_new_tokens"] < 1:
        raise TTLError(f"max_new_tokens={settings['max_new_tokens']}: must be at least 1")
    if settings["do_sample"]:
        if settings["temperature"] <= 0:
            raise TTLError(f"temperature={settings['temperature']}: must be positive when sampling")
        if not 0 < settings["top_p"] <= 1:
            raise TTLError(f"top_p={settings['top_p']}: must be in (0, 1]")
    else:
        settings = {k: v for k, v in settings.items() if k not in SAMPLING_KEYS[1:]}
    return settings


def export_generation_config(config, pad_token_id: int | None = None):
    """The `GenerationConfig` saved with an export: the model card's sampling settings."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id if pad_token_id is None else pad_token_id,
        **GENERATION_DEFAULTS,
    )


def generate_text(model, tokenizer, prompt: str, seed: int | None = None, streamer=None,
                  **settings) -> str:
    """Prompt plus continuation as text (special tokens removed); re-seeds first when `seed` is set.

    `settings` override the model card's sampling settings (see `generation_settings`).
    """
    from transformers import GenerationConfig, set_seed

    config = GenerationConfig(
        bos_token_id=model.config.bos_token_id,
        eos_token_id=model.config.eos_token_id,
        pad_token_id=model.config.pad_token_id if model.config.pad_token_id is not None
        else model.config.eos_token_id,
        # Checkpoints are saved with use_cache=False (training); generation wants the KV cache.
        use_cache=True,
        **generation_settings(**settings),
    )
    # The tokenizer adds <s> itself, as documents start in training (`ttl` packing).
    inputs = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False).to(model.device)
    if seed is not None:
        set_seed(seed)
    with torch.no_grad():
        output = model.generate(**inputs, generation_config=config, streamer=streamer)
    return tokenizer.decode(output[0], skip_special_tokens=True)


@contextlib.contextmanager
def eager(model: torch.nn.Module):
    """Run a model compiled in place (nn.Module.compile) eagerly: generation has changing
    shapes and would recompile at every length."""
    compiled = getattr(model, "_compiled_call_impl", None)
    model._compiled_call_impl = None
    try:
        yield model
    finally:
        model._compiled_call_impl = compiled


def generate_samples(model, tokenizer, prompts, seed: int = 42, **overrides) -> list[str]:
    """One completion per prompt with the model card's sampling settings, in eval mode and
    eagerly, leaving the model as it found it (training mode, compiled)."""
    was_training = model.training
    model.eval()
    try:
        with eager(model):
            return [generate_text(model, tokenizer, prompt, seed=seed, **overrides) for prompt in prompts]
    finally:
        model.train(was_training)
