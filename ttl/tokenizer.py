"""`python -m ttl.tokenizer data_path=PATH [vocab_size=32000] [output_dir=DIR]`: train a BPE
tokenizer in TeenyTinyLlama's style (`ttl.bpe`), save it, and report its fertility (tokens per
word) on the validation split.
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from ttl.bpe import documents, fertility, train_from_path
from ttl.errors import TTLError

DEFAULTS = {
    "data_path": "???",
    "vocab_size": 32000,
    "output_dir": "tokenizer",
    "text_column": "text",
    "val_fraction": 0.01,
    "model_max_length": 2048,
}


def main(argv: list[str] | None = None) -> int:
    """Command line: key=value arguments (see DEFAULTS); prints fertility on validation."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(DEFAULTS), _parse(args))
        if OmegaConf.is_missing(cfg, "data_path"):
            raise TTLError("data_path is required: python -m ttl.tokenizer data_path=DIR_OR_FILE")
        tokenizer = train_from_path(cfg.data_path, cfg.output_dir, cfg.vocab_size,
                                    cfg.text_column, cfg.val_fraction, cfg.model_max_length)
        ratio, tokens, words = fertility(
            tokenizer, documents(cfg.data_path, "validation", cfg.text_column, cfg.val_fraction)
        )
    except TTLError as error:
        print(f"ttl.tokenizer: error: {error}", file=sys.stderr)
        return 2
    print(f"saved {len(tokenizer):,}-token tokenizer to {cfg.output_dir}")
    print(f"fertility on validation: {ratio:.3f} tokens/word ({tokens:,} tokens, {words:,} words)")
    return 0


def _parse(args: list[str]):
    unknown = [a.split("=", 1)[0] for a in args if a.split("=", 1)[0] not in DEFAULTS]
    if unknown or any("=" not in a for a in args):
        raise TTLError(
            f"unknown argument {(unknown or args)[0]!r}; use key=value with keys "
            f"{', '.join(DEFAULTS)}"
        )
    return OmegaConf.from_dotlist(args)


if __name__ == "__main__":
    sys.exit(main())
