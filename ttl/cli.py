"""What every `python -m ttl.*` command shares: a Hydra app over its config in conf/, and one
style of errors.

Every command composes `conf/<command>.yaml` with Hydra, so `--help`, `--cfg job`, overrides,
config files (`--config-dir`, `--config-name`) and `-m` work the same everywhere. An unknown
key is Hydra's error (exit code 1); a value ttl refuses is one line, `<command>: error: ...`,
and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from ttl.errors import TTLError

# Hydra's override grammar takes no accents, commas or spaces in a bare value: free text
# (a prompt) is quoted for it, so `prompt="A capivara é"` works as typed in a shell.


def _hydra_quoted(value: str) -> str:
    """`value` as a Hydra quoted string (backslashes mean something only before a quote)."""
    quote = "'" if "'" not in value else ('"' if '"' not in value else "'")
    body = value.replace(quote, "\\" + quote)
    trailing = len(body) - len(body.rstrip("\\"))
    return quote + body + "\\" * trailing + quote


def quote_free_text(argv: Sequence[str], keys: Sequence[str]) -> list[str]:
    """`argv` with the values of `keys` quoted for Hydra (values already quoted are kept)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in keys and not (value[:1] in "'\"" and value[-1:] == value[:1] and len(value) > 1):
            arg = f"{key}={_hydra_quoted(value)}"
        out.append(arg)
    return out


def command_config(name: str, values: Mapping[str, Any] | None = None) -> DictConfig:
    """conf/<name>.yaml's values (its Hydra defaults list left out) with `values` (dotted or
    nested keys) merged in: what the command line composes, for calls from Python."""
    from importlib import resources

    text = (resources.files("ttl.conf.commands") / f"{name}.yaml").read_text()
    cfg = OmegaConf.create(text)
    cfg.pop("defaults", None)
    for key, value in (values or {}).items():
        OmegaConf.update(cfg, key, value, merge=True)
    return cfg


def typed(cfg: DictConfig | Mapping[str, Any], schema: type) -> DictConfig:
    """`cfg` checked against the dataclass `schema` (types, unknown keys), as a typed config;
    a bad value is a TTLError naming its key."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        merged = OmegaConf.structured(schema)
        for key, value in _dotted(plain):
            OmegaConf.update(merged, key, value, merge=False)
        return merged
    except ConfigKeyError as error:
        raise TTLError(f"unknown key {error.full_key!r}") from error
    except ValidationError as error:
        raise TTLError(f"{error.full_key}={error.value!r}: {str(error).splitlines()[0]}") from error
    except OmegaConfBaseException as error:
        raise TTLError(f"bad configuration ({str(error).splitlines()[0]})") from error


def _dotted(values: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append((prefix + str(key), value))
    return out


def require(cfg: DictConfig, key: str, usage: str) -> None:
    """Refuse a missing mandatory key with the usage line."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise TTLError(f"{key} is required: {usage}")


def run_command(prog: str, body: Callable[[], Any]) -> Any:
    """Run a command's body; a TTLError becomes one line on stderr and exit status 2."""
    # Command-line runs print their own progress; transformers' per-load bars are noise.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return body()
    except TTLError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)


def invoke(app: Callable[[], Any], argv: Sequence[str]) -> int:
    """Run the Hydra app `app` (a `@hydra.main` function) with command-line `argv` in this
    process, as `python -m ...` would; returns its exit status."""
    saved = sys.argv
    sys.argv = [saved[0] if saved else "ttl", *argv]
    try:
        app()
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved


def register_resolvers() -> None:
    """Register `${ttl.sample_corpus:}` so configs can point at the shipped sample corpus."""
    from ttl.data.sources import sample_corpus_dir

    if not OmegaConf.has_resolver("ttl.sample_corpus"):
        OmegaConf.register_new_resolver("ttl.sample_corpus", lambda: str(sample_corpus_dir()))


# -- typed keys of a composed config -------------------------------------------------------

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
