"""Find and load the pre-trained checkpoint (a local `step-<N>/` export or a Hub id) and its tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ttl.errors import TTLError
from ttl.rundir import is_export_dir, looks_like_hub_id, step_dirs


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


def load_tokenizer(checkpoint: str, tokenizer: str | None):
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
