"""Which checkpoints to evaluate, generate from or fine-tune, what their trainer_state.json says,
and how to load them: `checkpoints=` (evaluation: a run directory, one export or a Hub id at
`revisions`, docs/evaluation.md) and `checkpoint=` (fine-tuning, generation: one export or Hub id).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ttl.errors import TTLError, reason
from ttl.rundir import is_export_dir, looks_like_hub_id, read_trainer_state, step_dirs, step_of

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
    step = _integer(state.get("step"))
    if step is None:
        step = step_of(directory)
    tokens, per_step = _integer(state.get("tokens")), _integer(state.get("tokens_per_step"))
    if tokens is None and step is not None and per_step:
        tokens = step * per_step
    config_hash = state.get("config_hash")
    return Checkpoint(source=str(directory), step=step, tokens=tokens, val_ppl=_number(state.get("val_ppl")),
                      energy_kwh=_number(state.get("energy_kwh")),
                      emissions_kg_co2eq=_number(state.get("emissions_kg_co2eq")),
                      wall_time_s=_number(state.get("wall_time_s")),
                      config_hash=str(config_hash) if config_hash else None)


def find_checkpoints(spec: str, revisions: list[str] | tuple[str, ...] = (),
                     tokens_per_step: int | None = None) -> list[Checkpoint]:
    """Resolve `checkpoints=` (run dir, export dir or Hub id) into checkpoints, in step order; a
    Hub revision named like `step100000` has that step, and step x `tokens_per_step` tokens."""
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


def _load(loader, what: str, value: str, failure: str = "cannot load it", **kwargs):
    """`loader.from_pretrained(value)`, its failure a TTLError naming the key `what`."""
    try:
        return loader.from_pretrained(value, **kwargs)
    except Exception as error:  # OSError offline / missing files, ValueError bad config, ...
        raise TTLError(f"{what}={value}: {failure} ({reason(error)})") from error


def load_checkpoint(checkpoint: Checkpoint, device: str = "cpu", dtype: str = "float32",
                    tokenizer: str | None = None, key: str = "checkpoints"):
    """`(model, tokenizer)` of a checkpoint via `from_pretrained`, model in eval mode on `device`;
    `key` names the command-line key in error messages."""
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise TTLError(f"dtype={dtype}: not a torch dtype (use float32, bfloat16 or float16)")
    where = checkpoint.source + (f" (revision {checkpoint.revision})" if checkpoint.revision else "")
    what = ("cannot load a model" if Path(checkpoint.source).exists() else
            "no such local directory, and loading it as a Hub model id failed")
    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint.source, revision=checkpoint.revision,
                                                     dtype=torch_dtype)
    except Exception as error:
        raise TTLError(f"{key}={where}: {what} ({reason(error)})") from error
    tok = _load(AutoTokenizer, "tokenizer", tokenizer or checkpoint.source, "cannot load a tokenizer",
                revision=None if tokenizer else checkpoint.revision)
    return model.to(device).eval(), tok


def resolve_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu; anything else unchanged."""
    if device != "auto":
        return device
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
    model = _load(AutoModelForSequenceClassification, "checkpoint", checkpoint, num_labels=len(labels),
                  id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
                  pad_token_id=pad_token_id, use_cache=False, dtype=torch.float32, attn_implementation=attn)
    return model.train()  # from_pretrained gives eval mode; Lightning does not switch it back


def load_causal_lm(checkpoint: str, attn: str):
    """The pre-trained causal LM in fp32 (mixed precision is the Trainer's job), cache off: with
    it on, transformers does not derive per-sequence attention from restarting position ids, and
    packed conversations would attend to each other (see PITFALLS.md)."""
    return _load(AutoModelForCausalLM, "checkpoint", checkpoint, use_cache=False, dtype=torch.float32,
                 attn_implementation=attn).train()


def effective_max_length(requested: int, checkpoint: str) -> int:
    """`data.max_length`, capped at the checkpoint's context (the quickstart model has 128)."""
    context = getattr(_load(AutoConfig, "checkpoint", checkpoint), "max_position_embeddings", None)
    if context is not None and requested > context:
        print(f"data.max_length={requested} exceeds the checkpoint's context of {context} tokens: "
              f"inputs are truncated to {context}")
        return context
    return requested
