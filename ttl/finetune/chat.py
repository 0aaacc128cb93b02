"""Conversations for instruction tuning: chat template, added tokens, masked labels, collation.

The chat template (saved as `tokenizer.chat_template`) is the one definition of the format:
training ids come from `apply_chat_template`, so the saved tokenizer gives users the training
format back. Only the assistant's tokens (its `{% generation %}` block) carry a loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jinja2 import TemplateError
from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from ttl.errors import TTLError
from ttl.finetune.data import Split

IGNORE_INDEX = -100


def prepare_chat_tokenizer(tokenizer, added_tokens: list[str], template: str) -> int:
    """Add the instruction tokens (as special tokens) and set the chat template; returns #added."""
    added = tokenizer.add_special_tokens({"additional_special_tokens": list(added_tokens)})
    tokenizer.chat_template = template
    return added


def encode_conversation(tokenizer, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """Input ids and labels of one conversation: labels are the ids on assistant tokens, else -100."""
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(encoded["input_ids"])[:max_length]
    mask = list(encoded["assistant_masks"])[:max_length]
    return {"input_ids": ids, "labels": [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]}


@dataclass
class ChatStats:
    """What encoding a split produced, for the run report."""

    conversations: int = 0
    dropped: int = 0
    tokens: int = 0
    supervised_tokens: int = 0


def encode_conversations(split: Split, tokenizer, field: str,
                         max_length: int) -> tuple[list[dict], ChatStats]:
    """Encode every row's conversation; rows whose assistant turns fall past max_length are dropped."""
    examples, stats = [], ChatStats()
    for row, where in zip(split.rows, split.locations, strict=True):
        if field not in row:
            raise TTLError(f"{where}: no field data.messages_field={field!r} "
                           f"(the row has {', '.join(sorted(row))})")
        messages = row[field]
        if not isinstance(messages, list) or not messages:
            raise TTLError(f"{where}: data.messages_field={field!r} must be a non-empty list of turns")
        for turn in messages:
            if not (isinstance(turn, dict)
                    and all(isinstance(turn.get(k), str) for k in ("role", "content"))):
                raise TTLError(f"{where}: each turn needs string 'role' and 'content' (got {turn!r:.80})")
        try:
            example = encode_conversation(tokenizer, messages, max_length)
        except TemplateError as error:
            raise TTLError(f"{where}: {error}") from error
        supervised = sum(label != IGNORE_INDEX for label in example["labels"])
        if supervised == 0:
            stats.dropped += 1
            continue
        stats.conversations += 1
        stats.tokens += len(example["input_ids"])
        stats.supervised_tokens += supervised
        examples.append(example)
    return examples, stats


def chat_collator(tokenizer, packing: bool) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
    """Batches of conversations: padded (<pad>, attention 0 and labels -100 on padding), or packed:
    concatenated into one row with position ids that restart at each conversation, which keeps
    attention within each (use_cache must be off); each conversation's first label is then -100."""
    if packing:
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX,
                                  return_tensors="pt")
