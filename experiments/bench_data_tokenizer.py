"""Tokenizer fertility on pt-corpus-mini: ttl's 32k BPE against a Llama-2-style sentencepiece BPE.

Both are trained on the training split of the same corpus with 32,000 tokens and measured
on its validation split (tokens per whitespace-separated word, no special tokens):

- **ttl**: `ttl.tokenizer.train_bpe` (the `tokenizers` library, Metaspace, byte fallback;
  what `python -m ttl.tokenizer` trains), streaming the documents, any length;
- **llama2-style**: `sentencepiece` BPE with Llama-2's trainer settings (byte fallback,
  split digits, identity normalisation, no extra-whitespace removal, character coverage
  0.99995, max piece length 16, max_sentence_length 4192). Documents are cut into lines of
  at most 4192 bytes (`ttl.tokenizer.sentencepiece_lines`) so that sentencepiece drops none;
  the script also reports how many documents a plain one-document-per-line feed would lose.

    python experiments/bench_data_tokenizer.py [--data ../shared/data/pt-corpus-mini]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Iterator
from pathlib import Path

import sentencepiece as spm

from ttl.data.sources import iter_documents, resolve_source
from ttl.tokenizer import fertility, train_bpe

ROOT = Path(__file__).resolve().parents[1]

# sentencepiece's default (and Llama-2's) `max_sentence_length`: longer input lines are
# skipped without a word, so baselines trained with it must be fed shorter pieces.
SENTENCEPIECE_LINE_LIMIT = 4192


def sentencepiece_lines(text: str, limit: int = SENTENCEPIECE_LINE_LIMIT) -> Iterator[str]:
    """Cut a document into lines of at most `limit` UTF-8 bytes, so sentencepiece drops none.

    Cuts at newlines first, then at the last space before the limit, and only inside a word
    (at a character boundary) when a line has no space at all.
    """
    for line in text.split("\n"):
        while len(line.encode("utf-8")) > limit:
            head = line.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
            cut = head.rfind(" ")
            cut = cut if cut > 0 else len(head)
            yield line[:cut]
            line = line[cut:].lstrip(" ")
        if line.strip():
            yield line

VOCAB = 32000

# Llama-2's tokenizer.model trainer_spec, minus machine-specific thread counts.
LLAMA2_SETTINGS = dict(
    model_type="bpe", vocab_size=VOCAB, character_coverage=0.99995, byte_fallback=True,
    split_digits=True, split_by_unicode_script=True, split_by_number=True, split_by_whitespace=True,
    allow_whitespace_only_pieces=True, normalization_rule_name="identity", add_dummy_prefix=True,
    remove_extra_whitespaces=False, max_sentencepiece_length=16,
    max_sentence_length=SENTENCEPIECE_LINE_LIMIT, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    input_sentence_size=200_000_000, shuffle_input_sentence=True, seed_sentencepiece_size=1_000_000,
    shrinking_factor=0.75, num_sub_iterations=2, hard_vocab_limit=True,
)


def documents(data: str, split: str) -> list[str]:
    """Non-empty documents of a split of the corpus."""
    source = resolve_source(data, split, "text", "train", "validation", 0.01)
    return [t for t in iter_documents(source) if t.strip()]


def sentencepiece_fertility(model: bytes, texts: list[str]) -> tuple[float, int, int]:
    """Tokens per whitespace word of a sentencepiece model (no special tokens)."""
    processor = spm.SentencePieceProcessor(model_proto=model)
    tokens = sum(len(ids) for ids in processor.encode(texts))
    words = sum(len(t.split()) for t in texts)
    return tokens / words, tokens, words


def main() -> None:
    """Train both tokenizers, print their fertility on the validation split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pt-corpus-mini"))
    args = parser.parse_args()
    train, validation = documents(args.data, "train"), documents(args.data, "validation")
    too_long = sum(len(t.encode()) > SENTENCEPIECE_LINE_LIMIT for t in train)
    print(f"train: {len(train):,} documents, {too_long:,} longer than {SENTENCEPIECE_LINE_LIMIT} bytes "
          "(sentencepiece would skip them if fed one document per line)")

    start = time.perf_counter()
    ours = train_bpe(iter(train), vocab_size=VOCAB)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model = io.BytesIO()
    lines = [line for t in train for line in sentencepiece_lines(t)]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model,
                                   minloglevel=2, **LLAMA2_SETTINGS)
    sp_seconds = time.perf_counter() - start

    print(f"validation: {len(validation):,} documents")
    print("| tokenizer | vocab | train s | validation tokens | words | tokens/word |")
    print("|---|---|---|---|---|---|")
    ratio, tokens, words = fertility(ours, validation)
    print(f"| ttl BPE (tokenizers) | {len(ours):,} | {ours_seconds:.1f} | {tokens:,} | {words:,} "
          f"| {ratio:.3f} |")
    ratio, tokens, words = sentencepiece_fertility(model.getvalue(), validation)
    print(f"| Llama-2-style sentencepiece BPE | {VOCAB:,} | {sp_seconds:.1f} | {tokens:,} | {words:,} "
          f"| {ratio:.3f} |")


if __name__ == "__main__":
    main()
