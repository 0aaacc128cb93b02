"""Optimizers and learning-rate schedules, built by Hydra as partials (`_partial_: true`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def decay_groups(model: nn.Module, weight_decay: float, decay_all_params: bool,
                 decay_embeddings: bool = True) -> list[dict]:
    """Split trainable parameters into a decayed group and an exempt group.

    Matrices (linear and embedding weights) are decayed; 1-D parameters (RMSNorm weights and
    any biases) are exempt, and so is the input embedding with `decay_embeddings=False` (an
    output head tied to it is the same tensor: exempt too). `decay_all_params=True` reproduces
    TeenyTinyLlama, whose no-decay list matched no Llama parameter name, so every parameter
    was decayed.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_all_params:
        return [{"params": params, "weight_decay": weight_decay}]
    embeddings = set()
    if not decay_embeddings and hasattr(model, "get_input_embeddings"):
        embeddings = {id(model.get_input_embeddings().weight)}
    decayed = [p for p in params if p.ndim >= 2 and id(p) not in embeddings]
    exempt = [p for p in params if p.ndim < 2 or id(p) in embeddings]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": exempt, "weight_decay": 0.0},
    ]


def build_adamw(
    model: nn.Module,
    lr: float,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    decay_all_params: bool = False,
    fused: bool | None = None,
    decay_embeddings: bool = True,
) -> torch.optim.AdamW:
    """AdamW over `model` with norm/bias exemption; `fused=None` fuses on CUDA parameters."""
    groups = decay_groups(model, weight_decay, decay_all_params, decay_embeddings)
    if fused is None:
        fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused)


def _warmup(step: int, warmup_steps: int) -> float:
    # Step 0 already gets a non-zero rate: (step + 1) / warmup, as in the original schedule.
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_lr_ratio` at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def warmup_constant(optimizer: torch.optim.Optimizer, warmup_steps: int = 0) -> LambdaLR:
    """Linear warmup over `warmup_steps`, then the base learning rate."""
    return LambdaLR(optimizer, lambda step: _warmup(step, warmup_steps))


def warmup_stable_decay(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    decay_fraction: float = 0.2,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """Warmup, a constant plateau, then linear decay over the last `decay_fraction` of steps."""
    decay_start = int(total_steps * (1 - decay_fraction))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        if step < decay_start:
            return 1.0
        progress = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
        return 1.0 - (1 - min_lr_ratio) * progress

    return LambdaLR(optimizer, factor)
