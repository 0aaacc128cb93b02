"""The held-out rule: which documents of a corpus without a validation split are set aside.

A document is held out when a salted 64-bit BLAKE2b hash of its UTF-8 text, / 2**64, falls below
`fraction`: content only, so every reader (`ttl.data.prepare`, `ttl.evaluate`, `ttl.tokenizer`)
draws the same line, a duplicate cannot sit on both sides, and the held-out sets are nested
(held out at fraction f, held out at any larger one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ttl.errors import TTLError

SALT = b"ttl-holdout-v1"


def document_hash(text: str) -> float:
    """The document's place in [0, 1): a salted BLAKE2b-64 hash of its UTF-8 text / 2**64."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=SALT).digest()
    return int.from_bytes(digest, "big") / float(1 << 64)


def check_fraction(value, key: str = "data.val_fraction") -> float:
    """A fraction strictly between 0 and 1, or a TTLError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise TTLError(f"{key}={value!r}: must be a number strictly between 0 and 1")
    return float(value)


@dataclass(frozen=True)
class HoldoutRule:
    """Hold out the documents whose content hash falls below `fraction`."""

    fraction: float

    def __post_init__(self) -> None:
        check_fraction(self.fraction)

    def held_out(self, text: str) -> bool:
        """Whether `text` belongs to the held-out (validation) side."""
        return document_hash(text) < self.fraction

    def describe(self) -> dict:
        """The rule as recorded in manifests and run directories."""
        return {"rule": "content hash: held out when blake2b-64(utf-8 text, key=salt) / 2**64 < fraction",
                "salt": SALT.decode(), "fraction": self.fraction}


def rule_for(val_fraction: float, val_documents: int | None, total_documents: int | None,
             where: str) -> HoldoutRule:
    """The rule for `data.val_fraction`, or for `data.val_documents` out of `total_documents`
    (as the fraction count / total: the held-out split holds about that many)."""
    if val_documents is None:
        return HoldoutRule(check_fraction(val_fraction))
    if isinstance(val_documents, bool) or not isinstance(val_documents, int) or val_documents < 1:
        raise TTLError(f"data.val_documents={val_documents!r}: expected a positive integer or null")
    if not total_documents:
        raise TTLError(
            f"data.val_documents={val_documents}: the number of documents of {where} is not known "
            "before reading it; set data.val_fraction instead (and data.val_documents=null)"
        )
    if val_documents >= total_documents:
        raise TTLError(f"data.val_documents={val_documents}: {where} holds only "
                       f"{total_documents:,} documents")
    return HoldoutRule(val_documents / total_documents)
