"""Token-weighted perplexity of a causal LM over a text stream (summed token losses over the
number of predicted tokens, not a mean of per-batch means). `packed`: the training's validation
metric, blocks of `seq_len` as training packs them, each scored from a fresh context. `sliding`:
Hugging Face's sliding-window perplexity (https://huggingface.co/docs/transformers/perplexity),
windows of `seq_len` every `stride` tokens, each token predicted once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ttl.data.packing import RowPacker, encode_documents, is_empty
from ttl.errors import TTLError

METHODS = ("packed", "sliding")
IGNORE = -100


@dataclass(frozen=True)
class Perplexity:
    """Summed negative log-likelihood (nats) over `tokens` predicted tokens."""

    nll_sum: float
    tokens: int

    @property
    def loss(self) -> float:
        """Mean token cross-entropy in nats."""
        return self.nll_sum / self.tokens

    @property
    def ppl(self) -> float:
        """exp(mean token cross-entropy)."""
        return math.exp(self.loss)


def _encoded_batches(texts: Iterable[str], tokenizer, packing: str) -> Iterator[tuple]:
    """(flat ids, lengths) of the non-empty documents, 256 at a time (`encode_documents`)."""
    documents = (text for text in texts if not is_empty(text))
    while batch := list(itertools.islice(documents, 256)):
        yield encode_documents(tokenizer, batch, packing)


def token_stream(texts: Iterable[str], tokenizer, packing: str, max_tokens: int | None = None) -> list[int]:
    """All documents as one stream of token ids in the packing convention (empty ones skipped)."""
    parts, total = [], 0
    for flat, _ in _encoded_batches(texts, tokenizer, packing):
        parts.append(flat)
        total += len(flat)
        if max_tokens is not None and total >= max_tokens:
            break
    ids = np.concatenate(parts).tolist() if parts else []
    return ids[:max_tokens] if max_tokens is not None else ids


def packed_blocks(texts: Iterable[str], tokenizer, packing: str, seq_len: int,
                  max_tokens: int | None = None) -> torch.Tensor:
    """The training's packing: an (n, seq_len) tensor of blocks, the final partial one dropped."""
    packer, parts, rows = RowPacker(seq_len), [], 0
    for flat, lengths in _encoded_batches(texts, tokenizer, packing):
        parts.append(packer.add(flat, lengths).ids)
        rows += len(parts[-1])
        if max_tokens is not None and rows * seq_len >= max_tokens:
            break
    if not rows:
        raise TTLError(f"the evaluation data holds {packer.remainder:,} tokens, fewer than one "
                       f"block of seq_len={seq_len}; use method=sliding or more data")
    blocks = torch.from_numpy(np.concatenate(parts))
    if max_tokens is not None:
        blocks = blocks[: max(1, -(-max_tokens // seq_len))]
    return blocks


def sliding_windows(n_tokens: int, seq_len: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, target_len) of each window over `n_tokens` tokens, as in the HF recipe."""
    if not 0 < stride <= seq_len:
        raise TTLError(f"stride={stride}: must be between 1 and seq_len={seq_len}")
    windows, previous_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + seq_len, n_tokens)
        windows.append((begin, end, end - previous_end))
        previous_end = end
        if end == n_tokens:
            break
    return windows


@torch.no_grad()
def summed_nll(model, input_ids: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """Summed next-token cross-entropy of a batch and the number of predicted tokens (`labels`:
    -100 where no loss is wanted; the shift drops each row's first position)."""
    logits = model(input_ids=input_ids, use_cache=False).logits
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                           shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum")
    return float(loss), int((shift_labels != IGNORE).sum())


def perplexity_packed(model, blocks: torch.Tensor, batch_size: int = 8) -> Perplexity:
    """Perplexity over packed blocks (each block scored on its own, as in training validation)."""
    device = next(model.parameters()).device
    nll, count = 0.0, 0
    for start in range(0, blocks.shape[0], batch_size):
        batch = blocks[start:start + batch_size].to(device)
        batch_nll, batch_count = summed_nll(model, batch, batch)
        nll, count = nll + batch_nll, count + batch_count
    return Perplexity(nll, count)


def perplexity_sliding(model, ids: list[int] | torch.Tensor, seq_len: int, stride: int,
                       batch_size: int = 8) -> Perplexity:
    """Sliding-window perplexity over one token stream (windows of equal length are batched)."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.numel() < 2:
        raise TTLError(f"the evaluation data holds {ids.numel()} token(s); need at least 2")
    device = next(model.parameters()).device
    by_length: dict[int, list[torch.Tensor]] = {}  # (window, labels) pairs by window length
    for begin, end, target_len in sliding_windows(ids.numel(), seq_len, stride):
        labels = ids[begin:end].clone()
        labels[:-target_len] = IGNORE  # context only: scored by an earlier window
        by_length.setdefault(end - begin, []).append(torch.stack((ids[begin:end], labels)))
    nll, count = 0.0, 0
    for pairs in by_length.values():
        for start in range(0, len(pairs), batch_size):
            batch = torch.stack(pairs[start:start + batch_size])
            batch_nll, batch_count = summed_nll(model, batch[:, 0].to(device), batch[:, 1].to(device))
            nll, count = nll + batch_nll, count + batch_count
    return Perplexity(nll, count)
