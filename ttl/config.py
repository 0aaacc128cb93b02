"""Check a composed config and derive what follows from it (batch arithmetic, Trainer args).

Every check names the key at fault, so a typo or a wrong type fails before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ttl.errors import TTLError
from ttl.sharding import FSDP, fsdp_strategy

# Keys of the trainer/ group that are ttl's own, not Lightning Trainer arguments.
HARDWARE_KEYS = ("micro_batch_size", "micro_batch_by_model", "attn_implementation", "compile",
                 "compile_mode", "tf32", "loss_impl")

# key -> (type, minimum): values the run cannot start without.
_TYPED_KEYS: dict[str, tuple[type, float | None]] = {
    "seed": (int, 0),
    "batch.tokens_per_step": (int, 1),
    "trainer.max_steps": (int, 1),
    "data.seq_len": (int, 2),
    "data.num_workers": (int, 0),
    "data.tokenize_batch_size": (int, 1),
    "checkpoint.every_n_steps": (int, 1),
    "evaluation.every_n_steps": (int, 1),
    "checkpoint.keep_last_k": (int, -1),
    "optimizer.lr": (float, 0),
    "optimizer.weight_decay": (float, 0),
    "model.hidden_size": (int, 1),
    "model.num_hidden_layers": (int, 1),
    "model.num_attention_heads": (int, 1),
    "model.vocab_size": (int, 1),
    "model.max_position_embeddings": (int, 1),
}


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as error:
        raise TTLError(f"{key}: cannot be resolved ({error})") from error


def validate(cfg: DictConfig) -> None:
    """Check types and ranges of the keys a run depends on; raise TTLError naming the key."""
    for key, (kind, minimum) in _TYPED_KEYS.items():
        value = _get(cfg, key)
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise TTLError(f"{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")
        if minimum is not None and value < minimum:
            raise TTLError(f"{key}={value!r}: must be at least {minimum}")
    if cfg.data.seq_len > cfg.model.max_position_embeddings:
        raise TTLError(
            f"data.seq_len={cfg.data.seq_len} exceeds the model's context "
            f"model.max_position_embeddings={cfg.model.max_position_embeddings}"
        )
    if cfg.model.hidden_size % cfg.model.num_attention_heads:
        raise TTLError(
            f"model.hidden_size={cfg.model.hidden_size} is not divisible by "
            f"model.num_attention_heads={cfg.model.num_attention_heads}"
        )
    if cfg.resume not in ("auto", "never") and not str(cfg.resume).endswith(".ckpt"):
        raise TTLError(f"resume={cfg.resume!r}: use auto, never, or a path to a .ckpt file")


def world_size(trainer_cfg: DictConfig) -> int:
    """Processes taking part in training: devices per node x nodes."""
    devices = trainer_cfg.get("devices", 1)
    num_nodes = int(trainer_cfg.get("num_nodes", 1) or 1)
    if isinstance(devices, int) and devices > 0:
        per_node = devices
    elif isinstance(devices, str) and "," in devices:
        per_node = len([d for d in devices.split(",") if d.strip()])
    elif OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        per_node = len(devices)
    elif devices in ("auto", -1, "-1"):
        gpu = trainer_cfg.get("accelerator") in ("gpu", "cuda", "auto")
        per_node = max(1, torch.cuda.device_count()) if gpu else 1
    else:
        try:
            per_node = int(devices)
        except (TypeError, ValueError) as error:
            raise TTLError(f"trainer.devices={devices!r}: expected a count, a list or auto") from error
    return per_node * num_nodes


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch (in tokens) splits into micro-batches, devices and accumulation."""

    tokens_per_step: int
    seq_len: int
    micro_batch_size: int
    world_size: int
    accumulation: int

    @property
    def sequences_per_step(self) -> int:
        """Sequences of seq_len tokens per optimizer step, over all devices."""
        return self.tokens_per_step // self.seq_len


def micro_batch_size(cfg: DictConfig) -> int:
    """trainer.micro_batch_size, or the hardware config's value for this model size."""
    value = cfg.trainer.get("micro_batch_size")
    if value is None:
        table = cfg.trainer.get("micro_batch_by_model") or {}
        value = table.get(str(cfg.model.name))
        if value is None:
            raise TTLError(
                f"trainer.micro_batch_size is not set and trainer.micro_batch_by_model has no "
                f"entry for model {cfg.model.name!r}; pass trainer.micro_batch_size=N"
            )
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TTLError(f"trainer.micro_batch_size={value!r}: expected a positive integer")
    return value


def plan_batch(cfg: DictConfig) -> BatchPlan:
    """Derive gradient accumulation from tokens per step; refuse a batch that does not divide."""
    tokens, seq_len = cfg.batch.tokens_per_step, cfg.data.seq_len
    micro, world = micro_batch_size(cfg), world_size(cfg.trainer)
    if tokens % seq_len:
        raise TTLError(
            f"batch.tokens_per_step={tokens} is not a multiple of data.seq_len={seq_len}"
        )
    sequences = tokens // seq_len
    per_pass = micro * world
    if sequences % per_pass:
        raise TTLError(
            f"batch.tokens_per_step={tokens} ({sequences} sequences of {seq_len}) does not divide "
            f"into trainer.micro_batch_size={micro} x {world} device(s); choose a micro-batch "
            f"that divides {sequences // world if sequences % world == 0 else sequences}"
        )
    return BatchPlan(tokens, seq_len, micro, world, sequences // per_pass)


def lightning_trainer_kwargs(cfg: DictConfig, plan: BatchPlan) -> dict[str, Any]:
    """Lightning Trainer arguments: trainer.* minus ttl's hardware keys, plus accumulation."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in HARDWARE_KEYS:
        kwargs.pop(key, None)
    if "accumulate_grad_batches" in kwargs and kwargs["accumulate_grad_batches"] != plan.accumulation:
        raise TTLError(
            "trainer.accumulate_grad_batches is derived from batch.tokens_per_step; "
            "set the batch in tokens instead"
        )
    kwargs["accumulate_grad_batches"] = plan.accumulation
    if kwargs.get("strategy") == FSDP:
        # ttl's FSDP is FSDP2 through Lightning's ModelParallelStrategy (see ttl.sharding).
        kwargs["strategy"] = fsdp_strategy(plan.world_size)
    # Lightning counts validation intervals in micro-batches; the config counts steps.
    kwargs.setdefault("val_check_interval", cfg.evaluation.every_n_steps * plan.accumulation)
    return kwargs
