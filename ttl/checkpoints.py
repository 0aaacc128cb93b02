"""Which checkpoints to evaluate, generate from or fine-tune, what their trainer_state.json says,
and how to load them.

`checkpoints=` (evaluation) names one of:
- a run directory: every `step-<N>/` export inside it, sorted by step;
- one export directory (anything holding a `config.json`);
- a Hub model id (`owner/name`), optionally at several `revisions` (TeenyTinyLlama published
  its intermediate checkpoints as revisions named like `step100000`).

`checkpoint=` (fine-tuning, generation) names one export or Hub id; fine-tuning loads it as a
causal LM or with a new classification head (`load_classifier`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ttl.errors import TTLError
from ttl.rundir import STEP_DIR, is_export_dir, looks_like_hub_id, read_trainer_state, step_dirs

# Hub revisions of intermediate checkpoints: "step100000", "step-100000", "step_100000".
REVISION_STEP = re.compile(r"step[-_]?(\d+)")


@dataclass(frozen=True)
class Checkpoint:
    """One model to evaluate, with the figures its training recorded (None when unknown)."""

    source: str  # a local directory or a Hub model id
    revision: str | None = None
    step: int | None = None
    tokens: int | None = None
    val_ppl: float | None = None
    energy_kwh: float | None = None
    emissions_kg_co2eq: float | None = None
    wall_time_s: float | None = None
    config_hash: str | None = None

    @property
    def name(self) -> str:
        """A short label: the directory name (`step-150`) or `owner/name@revision`."""
        if Path(self.source).is_dir():
            return Path(self.source).name
        return f"{self.source}@{self.revision}" if self.revision else self.source


def _number(value) -> float | None:
    """A finite float, or None for missing, null, non-numeric or NaN values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _integer(value) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def checkpoint_from_dir(directory: str | Path) -> Checkpoint:
    """A local export, with step, tokens, energy etc. from its trainer_state.json."""
    directory = Path(directory)
    state = read_trainer_state(directory)
    match = STEP_DIR.match(directory.name)
    step = _integer(state.get("step"))
    if step is None and match:
        step = int(match.group(1))
    tokens = _integer(state.get("tokens"))
    if tokens is None and step is not None and _integer(state.get("tokens_per_step")):
        tokens = step * int(state["tokens_per_step"])
    config_hash = state.get("config_hash")
    return Checkpoint(
        source=str(directory),
        step=step,
        tokens=tokens,
        val_ppl=_number(state.get("val_ppl")),
        energy_kwh=_number(state.get("energy_kwh")),
        emissions_kg_co2eq=_number(state.get("emissions_kg_co2eq")),
        wall_time_s=_number(state.get("wall_time_s")),
        config_hash=str(config_hash) if config_hash else None,
    )


def find_checkpoints(spec: str, revisions: list[str] | tuple[str, ...] = (),
                     tokens_per_step: int | None = None) -> list[Checkpoint]:
    """Resolve `checkpoints=` (run dir, export dir or Hub id) into checkpoints, in step order.

    For Hub revisions named like `step100000`, the step is read from the name and the tokens
    are step x `tokens_per_step` when that is given (8,192 for TeenyTinyLlama).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        if revisions:
            raise TTLError(f"revisions={list(revisions)} only apply to a Hub model id, "
                           f"but checkpoints={spec} is a local directory")
        if is_export_dir(path):
            return [checkpoint_from_dir(path)]
        found = step_dirs(path)
        if not found:
            raise TTLError(f"checkpoints={spec}: no step-<N>/ checkpoint directories and no "
                           "config.json in this directory")
        return [checkpoint_from_dir(p) for p in found]
    if path.exists():
        raise TTLError(f"checkpoints={spec}: is a file; give a run directory, a step-<N> "
                       "directory or a Hub model id")
    if not looks_like_hub_id(spec):
        raise TTLError(f"checkpoints={spec}: no such directory (nor a Hub model id like owner/name)")
    out = []
    for revision in revisions or [None]:
        match = REVISION_STEP.search(revision or "")
        step = int(match.group(1)) if match else None
        tokens = step * tokens_per_step if step is not None and tokens_per_step else None
        out.append(Checkpoint(source=spec, revision=revision, step=step, tokens=tokens))
    return out


def load_checkpoint(checkpoint: Checkpoint, device: str = "cpu", dtype: str = "float32",
                    tokenizer: str | None = None, key: str = "checkpoints"):
    """`(model, tokenizer)` of a checkpoint via `from_pretrained`, model in eval mode on `device`.

    `key` names the command-line key in error messages.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise TTLError(f"dtype={dtype}: not a torch dtype (use float32, bfloat16 or float16)")
    where = checkpoint.source + (f" (revision {checkpoint.revision})" if checkpoint.revision else "")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            checkpoint.source, revision=checkpoint.revision, dtype=torch_dtype
        )
    except Exception as error:  # OSError offline / missing files, ValueError bad config, ...
        what = ("cannot load a model" if Path(checkpoint.source).exists() else
                "no such local directory, and loading it as a Hub model id failed")
        raise TTLError(f"{key}={where}: {what} ({type(error).__name__}: "
                       f"{str(error).strip().splitlines()[0][:200]})") from error
    tok_source = tokenizer or checkpoint.source
    try:
        tok = AutoTokenizer.from_pretrained(
            tok_source, revision=None if tokenizer else checkpoint.revision
        )
    except Exception as error:
        raise TTLError(f"tokenizer={tok_source}: cannot load a tokenizer ({type(error).__name__}: "
                       f"{str(error).strip().splitlines()[0][:200]})") from error
    return model.to(device).eval(), tok


def resolve_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_checkpoint(value: str) -> str:
    """The checkpoint as a loadable directory or Hub id; a wrong local path is an error."""
    path = Path(value).expanduser()
    if path.is_dir():
        if not is_export_dir(path):
            steps = step_dirs(path)
            hint = f"; pass a step directory such as checkpoint={steps[-1]}" if steps else ""
            raise TTLError(f"checkpoint={value}: no config.json in this directory{hint}")
        return str(path)
    if path.exists() or not looks_like_hub_id(value):
        raise TTLError(f"checkpoint={value}: no such directory")
    return value


def _load(loader, what: str, value: str, **kwargs):
    try:
        return loader.from_pretrained(value, **kwargs)
    except Exception as error:  # OSError offline, ValueError for a wrong architecture, ...
        raise TTLError(
            f"{what}={value}: cannot load it ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        ) from error


def tokenizer_for(checkpoint: str, tokenizer: str | None):
    """The tokenizer named by `tokenizer`, else the checkpoint's; it must have a pad token."""
    source, key = (tokenizer, "tokenizer") if tokenizer else (checkpoint, "checkpoint")
    loaded = _load(AutoTokenizer, key, source)
    if loaded.pad_token_id is None:
        raise TTLError(f"{key}={source}: the tokenizer has no pad token (ttl's is <pad>, id 3)")
    return loaded


def load_classifier(checkpoint: str, labels: list[str], pad_token_id: int, attn: str):
    """`LlamaForSequenceClassification` (any architecture's *ForSequenceClassification) with a new
    `num_labels`-way head; the head reads the last non-padding token, so pad_token_id must be set."""
    model = _load(
        AutoModelForSequenceClassification, "checkpoint", checkpoint,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        pad_token_id=pad_token_id,
        use_cache=False,
        dtype=torch.float32,
        attn_implementation=attn,
    )
    # from_pretrained returns the model in eval mode; Lightning does not switch it back.
    return model.train()


def load_causal_lm(checkpoint: str, attn: str):
    """The pre-trained causal LM in fp32 (mixed precision is the Trainer's job), cache off.

    With the cache on, transformers does not derive per-sequence attention from restarting
    position ids, and packed conversations would attend to each other (see PITFALLS.md).
    """
    model = _load(AutoModelForCausalLM, "checkpoint", checkpoint,
                  use_cache=False, dtype=torch.float32, attn_implementation=attn)
    return model.train()


def context_length(checkpoint: str) -> int | None:
    """The checkpoint's `max_position_embeddings` (None when its config has no such field)."""
    from transformers import AutoConfig

    return getattr(_load(AutoConfig, "checkpoint", checkpoint), "max_position_embeddings", None)


def effective_max_length(requested: int, checkpoint: str) -> int:
    """`data.max_length`, capped at the checkpoint's context (the quickstart model has 128)."""
    context = context_length(checkpoint)
    if context is not None and requested > context:
        print(f"data.max_length={requested} exceeds the checkpoint's context of {context} tokens: "
              f"inputs are truncated to {context}")
        return context
    return requested
