"""Check a composed fine-tuning config and derive the batch split and the Lightning Trainer arguments."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from ttl.cli import check_typed_keys
from ttl.errors import TTLError
from ttl.train.plan import world_size
from ttl.train.sharding import FSDP

KINDS = ("classification", "sft")

# key -> (type, minimum, may be null)
_TYPED_KEYS: dict[str, tuple[type, float, bool]] = {
    "seed": (int, 0, False),
    "recipe.lr": (float, 0, False),
    "recipe.weight_decay": (float, 0, False),
    "recipe.batch_size": (int, 1, False),
    "recipe.epochs": (int, 1, False),
    "recipe.warmup_steps": (int, 0, False),
    "data.max_length": (int, 4, False),
    "data.val_fraction": (float, 0, False),
    "data.limit_train": (int, 1, True),
    "data.limit_eval": (int, 1, True),
    "data.num_workers": (int, 0, False),
}


def validate(cfg: DictConfig) -> None:
    """Types and ranges of the keys a run depends on; a TTLError names the key at fault."""
    if OmegaConf.is_missing(cfg, "checkpoint"):
        raise TTLError(
            "checkpoint is required: python -m ttl.finetune task=<name> checkpoint=runs/<run>/step-<N>"
        )
    if cfg.task.kind not in KINDS:
        raise TTLError(f"task.kind={cfg.task.kind!r}: choose one of {', '.join(KINDS)}")
    check_typed_keys(cfg, _TYPED_KEYS)
    if cfg.trainer.get("strategy") == FSDP:
        raise TTLError("trainer.strategy=fsdp shards pre-training (ttl.train) only; fine-tune "
                       "on one device or with trainer.strategy=ddp")
    if cfg.selection.mode not in ("min", "max"):
        raise TTLError(f"selection.mode={cfg.selection.mode!r}: choose min or max")
    if cfg.task.kind == "classification" and len(cfg.task.labels) < 2:
        raise TTLError(f"task.labels={list(cfg.task.labels)}: a classification task needs two or more")


def batch_split(cfg: DictConfig) -> tuple[int, int]:
    """(micro-batch per device, gradient accumulation) for `batch.size` examples per step.

    `hardware.micro_batch_size` null puts the whole batch on each device in one pass.
    """
    size, world = cfg.batch.size, world_size(cfg.trainer)
    micro = cfg.hardware.get("micro_batch_size")
    if micro is None:
        if size % world:
            raise TTLError(f"batch.size={size} does not divide over {world} device(s)")
        micro = size // world
    if not isinstance(micro, int) or isinstance(micro, bool) or micro < 1:
        raise TTLError(f"hardware.micro_batch_size={micro!r}: expected a positive integer")
    if size % (micro * world):
        raise TTLError(
            f"batch.size={size} does not divide into hardware.micro_batch_size={micro} x {world} device(s)"
        )
    return micro, size // (micro * world)


def trainer_kwargs(cfg: DictConfig, accumulation: int) -> dict[str, Any]:
    """Lightning Trainer arguments: trainer.*, plus accumulation."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    if kwargs.get("accumulate_grad_batches", accumulation) != accumulation:
        raise TTLError("trainer.accumulate_grad_batches is derived from batch.size; set the batch instead")
    kwargs["accumulate_grad_batches"] = accumulation
    return kwargs
