"""Classification examples: a row's fields rendered through `data.template` into token ids.

A template is a Python format string whose literal special tokens are the tokenizer's, e.g.
ASSIN2's `<s>{premise}<s>{hypothesis}</s>`. It is split at those special tokens: each special
token becomes its id, and each piece in between is formatted with the row and tokenized on its
own with `split_special_tokens=True`, so a `<s>` typed by a user stays text, and each field
starts a word the way every pre-training document did. Inputs are truncated at the end to
`max_length` tokens, as the original did.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

from ttl.errors import TTLError
from ttl.finetune.sources import Split


def template_fields(template: str) -> list[str]:
    """The field names a template formats, in order of appearance."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TTLError(f"data.template={template!r}: {error}") from error
    return [name for _, name, _, _ in parsed if name]


def template_pieces(template: str, special_tokens: list[str]) -> list[str]:
    """The template split into special tokens and the text pieces between them."""
    pattern = "(" + "|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True)) + ")"
    return [piece for piece in re.split(pattern, template) if piece]


def label_id(value: Any, where: str, label_field: str, labels: list[str]) -> int:
    """A row's label as an id in [0, len(labels)): ints, booleans, or one of the label names."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, str) and value in labels:
        value = labels.index(value)
    if not isinstance(value, int) or not 0 <= value < len(labels):
        raise TTLError(
            f"{where}: {label_field}={value!r} is not a label of this task "
            f"(task.labels: 0..{len(labels) - 1} = {', '.join(labels)})"
        )
    return value


def _field_text(row: dict, name: str, where: str) -> str:
    value = row[name]
    if value is None:
        raise TTLError(f"{where}: field {name!r} is empty")
    return str(value)


def encode_split(split: Split, tokenizer, template: str, label_field: str, labels: list[str],
                 max_length: int) -> list[dict[str, Any]]:
    """Token ids and label id of every row: [{"input_ids": [...], "labels": int}, ...]."""
    fields = template_fields(template)
    for row, where in zip(split.rows, split.locations, strict=True):
        missing = [name for name in fields if name not in row]
        if missing:
            raise TTLError(
                f"{where}: no field {missing[0]!r} (data.template={template!r} needs it; the row has "
                f"{', '.join(sorted(row))}); set data.template or data.hub_columns"
            )
        if label_field not in row:
            raise TTLError(
                f"{where}: no label field data.label_field={label_field!r} (the row has "
                f"{', '.join(sorted(row))})"
            )
    special = [t for t in tokenizer.all_special_tokens if t in template]
    columns: list[list[list[int]]] = []
    for piece in template_pieces(template, special) if special else [template]:
        if piece in special:
            columns.append([[tokenizer.convert_tokens_to_ids(piece)]] * len(split))
            continue
        texts = [piece.format_map({name: _field_text(row, name, where) for name in fields})
                 for row, where in zip(split.rows, split.locations, strict=True)]
        columns.append(tokenizer(texts, add_special_tokens=False, split_special_tokens=True,
                                 verbose=False)["input_ids"])
    examples = []
    for i, (row, where) in enumerate(zip(split.rows, split.locations, strict=True)):
        ids = [token for column in columns for token in column[i]][:max_length]
        examples.append({"input_ids": ids, "labels": label_id(row[label_field], where, label_field, labels)})
    return examples


def majority_label(labels: list[int]) -> int:
    """The most frequent label (the smallest id among ties)."""
    counts = Counter(labels)
    top = max(counts.values())
    return min(label for label, count in counts.items() if count == top)
