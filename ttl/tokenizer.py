"""`python -m ttl.tokenizer data_path=PATH [vocab_size=32000] [output_dir=DIR]`: train a BPE
tokenizer in TeenyTinyLlama's style (`ttl.bpe`), save it, and report its fertility (tokens per
word) on the validation split. Config: conf/tokenizer.yaml.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import hydra
from omegaconf import MISSING, DictConfig

from ttl.bpe import documents, fertility, train_from_path
from ttl.cli import invoke, require, run_command, typed


@dataclass
class TokenizerArgs:
    """The types of conf/tokenizer.yaml's keys (its values are the defaults)."""

    data_path: str = MISSING
    vocab_size: int = MISSING
    output_dir: str = MISSING
    text_column: str = MISSING
    val_fraction: float = MISSING
    model_max_length: int = MISSING


def _train(cfg: DictConfig) -> None:
    cfg = typed(cfg, TokenizerArgs)
    require(cfg, "data_path", "python -m ttl.tokenizer data_path=DIR_OR_FILE")
    tokenizer = train_from_path(cfg.data_path, cfg.output_dir, cfg.vocab_size, cfg.text_column,
                                cfg.val_fraction, cfg.model_max_length)
    ratio, tokens, words = fertility(
        tokenizer, documents(cfg.data_path, "validation", cfg.text_column, cfg.val_fraction))
    print(f"saved {len(tokenizer):,}-token tokenizer to {cfg.output_dir}")
    print(f"fertility on validation: {ratio:.3f} tokens/word ({tokens:,} tokens, {words:,} words)")


@hydra.main(config_path="pkg://ttl.conf.commands", config_name="tokenizer", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    run_command("ttl.tokenizer", lambda: _train(cfg))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (`python -m ttl.tokenizer` / `ttl-tokenizer`); returns the exit status."""
    return invoke(_hydra_main, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
