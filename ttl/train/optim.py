"""Optimizers and learning-rate schedules, built by Hydra as partials (`_partial_: true`).

The schedules are ours, not transformers': in transformers 5 `get_cosine_schedule_with_warmup`,
`get_constant_schedule_with_warmup` and `get_wsd_schedule` warm up with the factor step/warmup,
so step 0 trains at lr 0 and the peak is first reached at step `warmup`. Ours, as in
TeenyTinyLlama's recipe, use (step + 1)/warmup: lr/warmup at step 0 and the peak at step
`warmup - 1`, one step earlier. From step `warmup` on, `warmup_cosine` and transformers' cosine
agree; `get_wsd_schedule` decays along a cosine by default, `warmup_stable_decay` linearly.
Muon is `torch.optim.Muon`; `MuonWithAdamW` only routes each parameter group to it or to
`torch.optim.AdamW`, because Lightning's automatic optimisation steps a single optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ttl.errors import TTLError


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
    betas: tuple[float, float] = (0.9, 0.999),
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


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The trainable 2-D weights inside the decoder blocks (attention and MLP projections).

    The input embedding and the output head are 2-D too, but they are lookup tables and a
    classifier, not hidden linear maps: Muon's orthogonalised update is meant for the latter.
    """
    outside = {id(model.get_input_embeddings().weight)}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        outside.add(id(head.weight))
    return [p for p in model.parameters() if p.requires_grad and p.ndim == 2 and id(p) not in outside]


class MuonWithAdamW(torch.optim.Optimizer):
    """One optimizer that steps Muon's parameter groups with `torch.optim.Muon` and the rest
    with `torch.optim.AdamW`.

    The groups and the per-parameter state are this optimizer's own (so `state_dict`,
    `load_state_dict`, schedulers, gradient clipping and FSDP's optimizer state dict see an
    ordinary optimizer); at each step they are lent to the two torch optimizers, which do the
    arithmetic. A group's `algorithm` key ("muon" or "adamw") says which.
    """

    def __init__(self, muon_groups: list[dict], adamw_groups: list[dict], muon_defaults: dict,
                 adamw_defaults: dict) -> None:
        # Each torch optimizer fills in its own defaults (momentum, ns_steps / betas, eps, ...).
        self._muon = torch.optim.Muon([{**g, "algorithm": "muon"} for g in muon_groups], **muon_defaults)
        self._adamw = torch.optim.AdamW([{**g, "algorithm": "adamw"} for g in adamw_groups],
                                        **adamw_defaults)
        super().__init__(self._muon.param_groups + self._adamw.param_groups, defaults={})

    def _lend(self) -> None:
        # load_state_dict replaces the group dicts and the state: lend the current ones.
        for inner, name in ((self._muon, "muon"), (self._adamw, "adamw")):
            inner.param_groups = [g for g in self.param_groups if g["algorithm"] == name]
            inner.state = self.state

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        """Evaluate `closure` once (with gradients), then step both kinds of group."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._lend()
        if self._muon.param_groups:
            self._muon.step()
        if self._adamw.param_groups:
            self._adamw.step()
        return loss


def build_muon(
    model: nn.Module,
    lr: float,
    embedding_lr: float | None = None,
    head_lr: float | None = None,
    norm_lr: float | None = None,
    weight_decay: float = 0.01,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    adjust_lr_fn: str = "match_rms_adamw",
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    decay_embeddings: bool = True,
    fused: bool | None = None,
) -> MuonWithAdamW:
    """Muon (`torch.optim.Muon`) for the hidden matrices, AdamW for everything else.

    Four groups, each with its own learning rate: the hidden matrices (Muon, `lr`), the input
    embedding (`embedding_lr`), the output head (`head_lr`; a head tied to the embedding is
    the embedding's tensor and takes `embedding_lr`) and the norms (`norm_lr`, never decayed);
    a group's rate left at None is `lr`.
    `adjust_lr_fn="match_rms_adamw"` scales Muon's orthogonal update to AdamW's typical RMS
    (0.2 x sqrt(max(rows, cols)), Moonlight), so one learning rate and weight decay suit both
    kinds of group and every matrix shape; torch's "original" (Keller Jordan's) scaling needs a
    separate, ~50x larger Muon rate.
    """
    hidden = hidden_matrices(model)
    hidden_ids = {id(p) for p in hidden}
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight if model.get_output_embeddings() is not None else None
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in hidden_ids]
    embeddings = [p for p in rest if p is embedding]
    heads = [p for p in rest if head is not None and p is head and p is not embedding]
    norms = [p for p in rest if p is not embedding and (head is None or p is not head)]
    if any(p.ndim != 1 for p in norms):
        raise TTLError("optimizer=muon: parameters other than the hidden matrices, the embedding "
                       "and the head must be norms or biases (1-D)")
    embedding_lr, head_lr, norm_lr = (lr if rate is None else rate
                                      for rate in (embedding_lr, head_lr, norm_lr))
    embedding_decay = weight_decay if decay_embeddings else 0.0
    adamw_groups = [
        {"params": embeddings, "lr": embedding_lr, "weight_decay": embedding_decay, "group": "embedding"},
        {"params": heads, "lr": head_lr, "weight_decay": weight_decay, "group": "head"},
        {"params": norms, "lr": norm_lr, "weight_decay": 0.0, "group": "norm"},
    ]
    if fused is None:
        fused = next(model.parameters()).is_cuda
    return MuonWithAdamW(
        muon_groups=[{"params": hidden, "lr": lr, "weight_decay": weight_decay, "group": "hidden"}],
        adamw_groups=[g for g in adamw_groups if g["params"]],
        muon_defaults={"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                       "ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn},
        adamw_defaults={"lr": lr, "betas": tuple(betas), "eps": eps, "fused": fused},
    )


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
