"""`python -m ttl.generate checkpoint=<dir or Hub id> prompt="..."`: sample text from a checkpoint.

Examples:
    python -m ttl.generate checkpoint=runs/quickstart/step-150 prompt="A capivara é" seed=42
    python -m ttl.generate checkpoint=runs/quickstart/step-150 prompts_file=prompts.txt
    python -m ttl.generate checkpoint=nicholasKluge/TeenyTinyLlama-160m prompt="Astronomia é" \\
        max_new_tokens=50 do_sample=false

Sampling defaults are the TeenyTinyLlama model card's (repetition_penalty 1.2, temperature 0.2,
top_k 20, top_p 0.2, max_new_tokens 150, sampling on); any of them can be set on the command
line. Text streams to the terminal as it is generated (transformers' `TextStreamer`). With
`seed=N` the output is reproducible: the generator is re-seeded before every prompt, so a
prompt's text does not depend on the prompts before it. `prompts_file` holds one prompt per
line (blank lines are skipped).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING, DictConfig

from ttl.errors import TTLError
from ttl.evaluate.checkpoints import Checkpoint, load_checkpoint, resolve_device
from ttl.evaluate.cli import parse_args, require, run_main
from ttl.sampling import GENERATION_DEFAULTS, generate_text, generation_settings

USAGE = 'python -m ttl.generate checkpoint=<dir or Hub id> prompt="..." [prompts_file=FILE] [seed=N]'


@dataclass
class GenerateArgs:
    """Keys of `python -m ttl.generate` (sampling defaults: the model card's)."""

    checkpoint: str = MISSING
    revision: str | None = None
    prompt: str | None = None
    prompts_file: str | None = None
    seed: int | None = None
    do_sample: bool = GENERATION_DEFAULTS["do_sample"]
    repetition_penalty: float = GENERATION_DEFAULTS["repetition_penalty"]
    temperature: float = GENERATION_DEFAULTS["temperature"]
    top_k: int = GENERATION_DEFAULTS["top_k"]
    top_p: float = GENERATION_DEFAULTS["top_p"]
    max_new_tokens: int = GENERATION_DEFAULTS["max_new_tokens"]
    stream: bool = True
    device: str = "auto"
    dtype: str = "float32"


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


def run(cfg: DictConfig) -> list[str]:
    """Generate for every prompt of `cfg`, streaming to stdout when `cfg.stream`; returns texts."""
    from transformers import TextStreamer

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


def generate(args: Sequence[str] | Mapping) -> list[str]:
    """`python -m ttl.generate` from Python: key=value arguments (or a mapping); returns texts."""
    cfg = parse_args(GenerateArgs, args if isinstance(args, Mapping) else list(args),
                     verbatim=("prompt",))
    require(cfg, "checkpoint", USAGE)
    return run(cfg)


def _main(args: list[str]) -> int:
    generate(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point (`python -m ttl.generate` / `ttl-generate`)."""
    return run_main("ttl.generate", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
