"""`python -m ttl.generate checkpoint=<dir or Hub id> prompt="..."`: sample text from a checkpoint.

Examples:
    python -m ttl.generate checkpoint=runs/quickstart/step-150 prompt="A capivara é" seed=42
    python -m ttl.generate checkpoint=runs/quickstart/step-150 prompts_file=prompts.txt
    python -m ttl.generate checkpoint=nicholasKluge/TeenyTinyLlama-160m prompt="Astronomia é" \\
        max_new_tokens=50 do_sample=false

Config: conf/generate.yaml (sampling defaults: the TeenyTinyLlama model card's; any can be set
on the command line). Text streams to the terminal as it is generated. With `seed=N` the output
is reproducible: the generator is re-seeded before every prompt.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import hydra
from omegaconf import MISSING, DictConfig

from ttl.checkpoints import Checkpoint, load_checkpoint, resolve_device
from ttl.cli import command_config, invoke, quote_free_text, require, run_command, typed
from ttl.sampling import GENERATION_DEFAULTS, generate_text, generation_settings, read_prompts

USAGE = 'python -m ttl.generate checkpoint=<dir or Hub id> prompt="..." [prompts_file=FILE] [seed=N]'
FREE_TEXT = ("prompt", "prompts_file")


@dataclass
class GenerateArgs:
    """The types of conf/generate.yaml's keys (its values are the defaults)."""

    checkpoint: str = MISSING
    revision: str | None = MISSING
    prompt: str | None = MISSING
    prompts_file: str | None = MISSING
    seed: int | None = MISSING
    do_sample: bool = MISSING
    repetition_penalty: float = MISSING
    temperature: float = MISSING
    top_k: int = MISSING
    top_p: float = MISSING
    max_new_tokens: int = MISSING
    stream: bool = MISSING
    device: str = MISSING
    dtype: str = MISSING


def generate(cfg: DictConfig | Mapping) -> list[str]:
    """Generate for every prompt of `cfg` (conf/generate.yaml's keys), streaming to stdout when
    `cfg.stream`; returns the texts."""
    from transformers import TextStreamer

    cfg = typed(cfg if isinstance(cfg, DictConfig) else command_config("generate", cfg), GenerateArgs)
    require(cfg, "checkpoint", USAGE)
    prompts = read_prompts(cfg.prompt, cfg.prompts_file, USAGE)
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


@hydra.main(config_path="pkg://ttl.conf.commands", config_name="generate", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run_command("ttl.generate", lambda: generate(cfg))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.generate` / `ttl-generate`); returns the exit status."""
    return invoke(_hydra_main, quote_free_text(sys.argv[1:] if argv is None else argv, FREE_TEXT))


if __name__ == "__main__":
    sys.exit(main())
