"""What every `python -m ttl.*` command shares: a Hydra app over a typed config, and one style of
errors.

Each setting is declared once, in a dataclass or in the signature of what a config names with
`_target_` (`schema`), and registered in Hydra's ConfigStore (`store`): docs/architecture.md.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from ttl.errors import TTLError

# -- declarations: dataclasses and signatures -------------------------------------------------


def _omegaconf_type(hint: Any) -> Any:
    """`hint` when OmegaConf can hold and check values of that type, else Any."""
    try:
        probe = dataclasses.make_dataclass("_Probe", [("value", hint, dataclasses.field(default=MISSING))])
        OmegaConf.structured(probe)
        return hint
    except Exception:  # unions of several types, Callables, arbitrary classes
        return Any


def schema(target: Callable, *, partial: bool = False, exclude: Sequence[str] = ()) -> type:
    """A structured config for `target` (a function or class that a config names with
    `_target_`): a dataclass with `_target_` (and `_partial_: true` with `partial`) and one field
    per parameter, its type and default read from the signature (required, `???`, without one).
    Parameters in `exclude` are given at `instantiate` time by the code (a model, a tokenizer)."""
    function = target.__init__ if inspect.isclass(target) else target
    hints = typing.get_type_hints(function)
    fields: list[tuple] = [("_target_", str, f"{target.__module__}.{target.__qualname__}")]
    if partial:
        fields.append(("_partial_", bool, True))
    for name, parameter in inspect.signature(target).parameters.items():
        if name in exclude or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = MISSING if parameter.default is parameter.empty else parameter.default
        if isinstance(default, list | dict):
            default = dataclasses.field(default_factory=lambda value=default: copy.deepcopy(value))
        fields.append((name, _omegaconf_type(hints.get(name, Any)), default))
    return dataclasses.make_dataclass(f"{target.__name__}Config", fields)


def build(node: Any, **context: Any) -> Any:
    """`instantiate(node)` handed the values of `context` that its `_target_`'s signature names
    (the run directory, the run's step count, ...): the builder owns those values, so no config
    node copies them. Built as a partial first, so `_target_`s inside context values stay data."""
    from hydra.utils import get_object, instantiate

    accepted = inspect.signature(get_object(node["_target_"])).parameters
    factory = instantiate(node, _partial_=True)
    handed = {key: value for key, value in context.items() if key in accepted}
    if node.get("_partial_", False):
        return functools.partial(factory, **handed)
    return factory(**handed)


def store(node: type, name: str, group: str | None = None) -> None:
    """Register a structured config in Hydra's ConfigStore (a YAML file extends it through its
    defaults list: `defaults: [<name>, _self_]`)."""
    ConfigStore.instance().store(name=name, group=group, node=node)


def command_config(settings: type, values: Mapping[str, Any] | None = None) -> DictConfig:
    """A command's typed config (the dataclass `settings`) with `values` (dotted or nested keys)
    merged in: what the command line composes, for calls from Python. A bad key or value is a
    TTLError naming it."""
    try:
        cfg = OmegaConf.structured(settings)
        for key, value in (values or {}).items():
            OmegaConf.update(cfg, key, value, merge=True)
        return cfg
    except (ConfigKeyError, ConfigAttributeError) as error:
        raise TTLError(f"unknown key {error.full_key!r}") from error
    except ValidationError as error:
        raise TTLError(f"{error.full_key}={error.value!r}: {str(error).splitlines()[0]}") from error
    except OmegaConfBaseException as error:
        raise TTLError(f"bad configuration ({str(error).splitlines()[0]})") from error


def require(cfg: DictConfig, key: str, usage: str) -> None:
    """Refuse a missing mandatory key with the usage line."""
    if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
        raise TTLError(f"{key} is required: {usage}")


def typed_settings(cfg: DictConfig, root: type, components: Sequence[str]) -> Any:
    """The composed config as its typed `root` dataclass, checked by its `validate()`: what the
    builders read. The `components` groups (a `_target_` and its arguments, typed by its
    signature's schema) stay config nodes, for `instantiate` and `build`."""
    settings = OmegaConf.to_object(cfg)
    if not isinstance(settings, root):
        raise TypeError(f"expected a config composed from {root.__name__}, got {type(settings).__name__}")
    settings.validate()
    for group in components:
        setattr(settings, group, cfg[group])
    return settings


def first_missing(cfg: DictConfig, usage: str = "") -> None:
    """Refuse a config with a mandatory key (`???`) left unset, naming the first one."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise TTLError(f"{missing[0]} is required{f': {usage}' if usage else f' (e.g. {missing[0]}=...)'}")


# -- the command line ----------------------------------------------------------------------

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


def hydra_command(prog: str, config_name: str, body: Callable[[DictConfig], Any],
                  free_text: Sequence[str] = ()) -> Callable[..., int]:
    """A command's console entry point: the Hydra app over conf/commands/<config_name>.yaml that
    runs `body(cfg)` (its TTLError one line, exit 2), with the values of `free_text` keys quoted
    for Hydra. The returned `main(argv=None)` gives the exit status."""

    @hydra.main(config_path="pkg://ttl.conf.commands", config_name=config_name, version_base="1.3")
    def app(cfg: DictConfig) -> Any:
        # Command-line runs print their own progress; transformers' per-load bars are noise.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            return body(cfg)
        except TTLError as error:
            print(f"{prog}: error: {error}", file=sys.stderr)
            sys.exit(2)

    def main(argv: Sequence[str] | None = None) -> int:
        register_resolvers()
        return invoke(app, quote_free_text(sys.argv[1:] if argv is None else argv, free_text))

    main.__doc__ = f"Console entry point of `python -m {prog}`; returns the exit status."
    return main


def register_resolvers() -> None:
    """Register `${ttl.sample_corpus:}` so configs can point at the shipped sample corpus."""
    from ttl.data.sources import sample_corpus_dir

    if not OmegaConf.has_resolver("ttl.sample_corpus"):
        OmegaConf.register_new_resolver("ttl.sample_corpus", lambda: str(sample_corpus_dir()))
