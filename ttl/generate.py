"""Sampling text from a checkpoint: the model card's settings, one function that generates, and
the command `python -m ttl.generate checkpoint=<dir or Hub id> prompt="..."` (examples in
docs/evaluation.md; config: conf/commands/generate.yaml).

Everything that samples goes through here: the command, the W&B sample tables of
`ttl.train.callbacks.samples`, the exports' generation_config.json, the model card's widget
settings and the chat fine-tuning export.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING, DictConfig

from ttl.checkpoints import Checkpoint, load_checkpoint, resolve_device
from ttl.cli import command_config, hydra_command, require, store
from ttl.errors import TTLError

USAGE = 'python -m ttl.generate checkpoint=<dir or Hub id> prompt="..." [prompts_file=FILE] [seed=N]'
# The TeenyTinyLlama model card's sampling settings.
GENERATION_DEFAULTS = dict(do_sample=True, repetition_penalty=1.2, temperature=0.2, top_k=20, top_p=0.2,
                           max_new_tokens=150)
# Keys that only mean something when sampling (dropped for greedy decoding, which the repetition
# penalty applies to too).
SAMPLING_KEYS = ("temperature", "top_k", "top_p")


def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str]:
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
        raise TTLError(f"no prompt: give prompt=... or prompts_file=... ({USAGE})")
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
        settings = {k: v for k, v in settings.items() if k not in SAMPLING_KEYS}
    return settings


def export_generation_config(config, pad_token_id: int | None = None, **settings):
    """A `GenerationConfig` for a model's `config`: the model card's sampling settings with
    `settings` (see `generation_settings`); the one saved with an export takes none."""
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                            pad_token_id=config.pad_token_id if pad_token_id is None else pad_token_id,
                            **generation_settings(**settings))


def generate_text(model, tokenizer, prompt: str, seed: int | None = None, streamer=None, **settings) -> str:
    """Prompt plus continuation as text (special tokens removed), re-seeded first when `seed` is
    set; `settings` override the model card's sampling settings (see `generation_settings`)."""
    from transformers import set_seed

    # Checkpoints are saved with use_cache=False (training); generation wants the KV cache.
    pad = model.config.eos_token_id if model.config.pad_token_id is None else model.config.pad_token_id
    config = export_generation_config(model.config, pad, use_cache=True, **settings)
    # The tokenizer adds <s> itself, as documents start in training (`ttl` packing).
    inputs = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False).to(model.device)
    if seed is not None:
        set_seed(seed)
    with torch.no_grad():
        output = model.generate(**inputs, generation_config=config, streamer=streamer)
    return tokenizer.decode(output[0], skip_special_tokens=True)


def generate_samples(model, tokenizer, prompts, seed: int = 42, **overrides) -> list[str]:
    """One completion per prompt with the model card's sampling settings, in eval mode and
    eagerly (a model compiled in place, nn.Module.compile, would recompile at every length),
    leaving the model as it found it (training mode, compiled)."""
    was_training, compiled = model.training, getattr(model, "_compiled_call_impl", None)
    model.eval()
    model._compiled_call_impl = None
    try:
        return [generate_text(model, tokenizer, prompt, seed=seed, **overrides) for prompt in prompts]
    finally:
        model.train(was_training)
        model._compiled_call_impl = compiled


# -- the command ---------------------------------------------------------------------------


@dataclass
class GenerateConfig:
    """`python -m ttl.generate`: the checkpoint, the prompts and the sampling settings (the
    TeenyTinyLlama model card's by default)."""

    # A step-<N>/ export, any Llama directory, or a Hub model id (with revision=...).
    checkpoint: str = MISSING
    revision: str | None = None
    # One prompt, and/or a file of prompts (one per line; blank lines skipped).
    prompt: str | None = None
    prompts_file: str | None = None
    # Re-seeded before every prompt: a prompt's text does not depend on the prompts before it.
    seed: int | None = None
    do_sample: bool = GENERATION_DEFAULTS["do_sample"]
    repetition_penalty: float = GENERATION_DEFAULTS["repetition_penalty"]
    temperature: float = GENERATION_DEFAULTS["temperature"]
    top_k: int = GENERATION_DEFAULTS["top_k"]
    top_p: float = GENERATION_DEFAULTS["top_p"]
    max_new_tokens: int = GENERATION_DEFAULTS["max_new_tokens"]
    # Print the text as it is generated (transformers' TextStreamer).
    stream: bool = True
    # auto: cuda when available, else cpu.
    device: str = "auto"
    dtype: str = "float32"


store(GenerateConfig, "generate_schema")


def generate(cfg: DictConfig | Mapping) -> list[str]:
    """Generate for every prompt of `cfg` (`GenerateConfig`'s keys), streaming to stdout when
    `cfg.stream`; returns the texts."""
    from transformers import TextStreamer

    cfg = cfg if isinstance(cfg, DictConfig) else command_config(GenerateConfig, cfg)
    require(cfg, "checkpoint", USAGE)
    prompts = read_prompts(cfg.prompt, cfg.prompts_file)
    settings = {k: cfg[k] for k in GENERATION_DEFAULTS}
    generation_settings(**settings)  # refuse bad values before loading the model
    model, tokenizer = load_checkpoint(Checkpoint(source=cfg.checkpoint, revision=cfg.revision),
                                       resolve_device(cfg.device), cfg.dtype, key="checkpoint")
    texts = []
    for index, prompt in enumerate(prompts):
        if index:
            print()
        streamer = TextStreamer(tokenizer, skip_special_tokens=True) if cfg.stream else None
        text = generate_text(model, tokenizer, prompt, cfg.seed, streamer=streamer, **settings)
        if not cfg.stream:
            print(text)
        texts.append(text)
    return texts


main = hydra_command("ttl.generate", "generate", generate, free_text=("prompt", "prompts_file"))

if __name__ == "__main__":
    sys.exit(main())
