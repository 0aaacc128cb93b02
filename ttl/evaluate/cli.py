"""key=value command lines over a typed dataclass of defaults (OmegaConf dotlist).

Shared by `python -m ttl.evaluate`, `python -m ttl.evaluate harness` and `python -m ttl.generate`,
in the style of `python -m ttl.tokenizer`: unknown keys and badly typed values are refused with
a `TTLError` that names the key and the value.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from ttl.errors import TTLError


def _keys(schema: Any, prefix: str = "") -> list[str]:
    """Every settable key of a (nested) dataclass, dotted."""
    out: list[str] = []
    for f in fields(schema):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            out.extend(_keys(default, f"{prefix}{f.name}."))
        else:
            out.append(prefix + f.name)
    return out


def parse_args(schema: type, args: Sequence[str] | Mapping[str, Any],
               verbatim: Sequence[str] = ()) -> DictConfig:
    """Merge `key=value` arguments (or a mapping of dotted keys to values) over the dataclass
    `schema`; returns a typed config.

    Keys in `verbatim` (free text such as a prompt) keep their value exactly as typed: the
    dotlist grammar would otherwise read `Era uma vez: um` as a mapping or drop `# ...`.
    """
    cfg = OmegaConf.structured(schema)
    keys = _keys(schema)
    parsed: list[str] = []
    raw: dict[str, Any] = dict(args) if isinstance(args, Mapping) else {}
    for arg in [] if isinstance(args, Mapping) else args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise TTLError(f"argument {arg!r} is not key=value; keys: {', '.join(keys)}")
        if key in verbatim:
            raw[key] = value
        else:
            parsed.append(arg)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(parsed))
        for key, value in raw.items():
            OmegaConf.update(cfg, key, value, merge=False)
    except ConfigKeyError as error:
        raise TTLError(f"unknown argument {error.full_key!r}; keys: {', '.join(keys)}") from error
    except ValidationError as error:
        value = raw.get(error.full_key, next(
            (a.partition("=")[2] for a in parsed if a.partition("=")[0] == error.full_key), None))
        expected = str(error).splitlines()[0]
        raise TTLError(f"{error.full_key}={value!r}: {expected}") from error
    except OmegaConfBaseException as error:  # grammar errors in a value, e.g. an unclosed [
        raise TTLError(f"cannot parse the arguments ({str(error).splitlines()[0]})") from error
    return cfg


def require(cfg: DictConfig, key: str, usage: str) -> None:
    """Refuse a missing mandatory key with the usage line."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise TTLError(f"{key} is required: {usage}")


def run_main(prog: str, body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run `body(args)`; a `TTLError` becomes one line on stderr and exit status 2."""
    args = sys.argv[1:] if argv is None else argv
    # Command-line runs print their own progress; transformers' per-load bars are noise.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return body(args)
    except TTLError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
