"""Typed keys of a composed config: one validator for every command that needs one.

Hydra composes any value a user types; the keys a run cannot start without are checked here,
before anything runs, and a wrong one is a TTLError that names the key and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ttl.errors import TTLError


def value_of(cfg: DictConfig, key: str) -> Any:
    """The value of a dotted key; an unresolvable or missing one is a TTLError naming it."""
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as error:
        raise TTLError(f"{key}: cannot be resolved ({error})") from error


def check_typed_keys(cfg: DictConfig, spec: Mapping[str, tuple[type, float | None, bool]]) -> None:
    """Check `spec`'s keys: {dotted key: (int or float, minimum or None, may be null)}."""
    for key, (kind, minimum, nullable) in spec.items():
        value = value_of(cfg, key)
        if value is None and nullable:
            continue
        ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
        if not ok or isinstance(value, bool):
            raise TTLError(f"{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")
        if minimum is not None and value < minimum:
            raise TTLError(f"{key}={value!r}: must be at least {minimum}")
