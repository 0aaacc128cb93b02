"""BPE tokenizers in TeenyTinyLlama's style, and the command `python -m ttl.tokenizer
data_path=PATH [vocab_size=32000] [output_dir=DIR]` (docs/data.md; conf/commands/tokenizer.yaml).

Byte fallback (ids 4-259 are the 256 bytes, so no text is ever <unk>), SentencePiece-style
Metaspace pre-tokenization, special tokens `<unk> <s> </s> <pad>` = ids 0-3, `<s>` added at the
start of every encoding.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING, DictConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ttl.cli import first_missing, hydra_command, store
from ttl.data.sources import iter_documents, resolve_source
from ttl.errors import TTLError, reason
from ttl.rundir import write_dir

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]


def train_bpe(texts: Iterable[str], vocab_size: int = 32000, min_frequency: int = 2,
              model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """Train a byte-fallback BPE tokenizer on `texts` (streamed; documents of any length)."""
    reserved = len(SPECIAL_TOKENS) + len(BYTE_TOKENS)
    if vocab_size <= reserved + 16:
        raise TTLError(f"vocab_size={vocab_size}: must exceed {reserved + 16} (specials + bytes)")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                           decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    # The bytes enter as trainer specials so they take ids 4-259 and count in vocab_size; they
    # are turned back into ordinary vocabulary entries below.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=SPECIAL_TOKENS + BYTE_TOKENS,
                                  limit_alphabet=min(1000, vocab_size // 8), show_progress=False)
    tokenizer.train_from_iterator((t for t in texts if t), trainer=trainer)
    data = json.loads(tokenizer.to_str())
    # Byte tokens must not be "special": they would be stripped by skip_special_tokens and
    # matched literally in raw text.
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] in SPECIAL_TOKENS]
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                             special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>", model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False)


def load_tokenizer(path: str):
    """Load a tokenizer directory or Hub id, with a clear error when it cannot be found."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as error:
        raise TTLError(f"tokenizer.path={path}: cannot load a tokenizer there ({reason(error)}); "
                       "train one with `python -m ttl.tokenizer`") from error


def fertility(tokenizer, texts: Iterable[str]) -> tuple[float, int, int]:
    """Tokens per whitespace-separated word over `texts`: (ratio, tokens, words)."""
    tokens = words = 0
    for text in texts:
        if not text.strip():
            continue
        tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        words += len(text.split())
    return (tokens / words if words else float("nan")), tokens, words


def documents(data_path: str, split: str, text_column: str, val_fraction: float) -> Iterator[str]:
    """The documents of `split` ("train": the training side; "validation": the held-out one)."""
    return iter_documents(resolve_source(data_path, split, text_column, "train", "validation", val_fraction))


def train_from_path(data_path: str, output_dir: str | Path, vocab_size: int = 32000,
                    text_column: str = "text", val_fraction: float = 0.01,
                    model_max_length: int = 2048):
    """Train on the training split of `data_path` and save to `output_dir` atomically."""
    tokenizer = train_bpe(documents(data_path, "train", text_column, val_fraction),
                          vocab_size=vocab_size, model_max_length=model_max_length)
    write_dir(Path(output_dir), tokenizer.save_pretrained)
    return tokenizer


# -- the command ---------------------------------------------------------------------------

USAGE = "python -m ttl.tokenizer data_path=DIR_OR_FILE [vocab_size=32000] [output_dir=DIR]"


@dataclass
class TokenizerTrainingConfig:
    """`python -m ttl.tokenizer`: train a tokenizer and report its fertility. (The `tokenizer:`
    group of `ttl.train` is another thing: which tokenizer a run uses.)"""

    # Local parquet / jsonl / txt data or a Hub dataset id; trained on its training side only.
    data_path: str = MISSING
    vocab_size: int = 32000
    output_dir: str = "tokenizer"
    text_column: str = "text"
    # Without a validation split: the share held out (by content hash) for the fertility figure.
    val_fraction: float = 0.01
    model_max_length: int = 2048


store(TokenizerTrainingConfig, "tokenizer_schema")


def _train(cfg: DictConfig) -> None:
    first_missing(cfg, USAGE)
    tokenizer = train_from_path(cfg.data_path, cfg.output_dir, cfg.vocab_size, cfg.text_column,
                                cfg.val_fraction, cfg.model_max_length)
    ratio, tokens, words = fertility(
        tokenizer, documents(cfg.data_path, "validation", cfg.text_column, cfg.val_fraction))
    print(f"saved {len(tokenizer):,}-token tokenizer to {cfg.output_dir}")
    print(f"fertility on validation: {ratio:.3f} tokens/word ({tokens:,} tokens, {words:,} words)")


main = hydra_command("ttl.tokenizer", "tokenizer", _train)

if __name__ == "__main__":
    sys.exit(main())
