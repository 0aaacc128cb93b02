"""Optimizers and learning-rate schedules, built by Hydra as partials (`_partial_: true`).

The schedules are ours, not transformers': transformers 5's warm up with step/warmup (lr 0 at
step 0); ours, as TeenyTinyLlama's recipe, with (step + 1)/warmup, reaching the peak one step
earlier. `warmup_stable_decay` decays linearly (`get_wsd_schedule`: along a cosine).
`MuonWithAdamW` routes each group to `torch.optim.Muon` or `torch.optim.AdamW`, because
Lightning's automatic optimisation steps a single optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from ttl.train.parametrization import Mup, check_untied, muon_shape_factor, parameter_roles


def decay_groups(model: nn.Module, weight_decay: float, decay_all_params: bool,
                 decay_embeddings: bool = True) -> list[dict]:
    """Split trainable parameters into a decayed group (matrices) and an exempt one (1-D norms and
    biases; the input embedding, and a head tied to it, with `decay_embeddings=False`).
    `decay_all_params=True` reproduces TeenyTinyLlama, whose no-decay list matched no Llama
    parameter name."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_all_params:
        return [{"params": params, "weight_decay": weight_decay}]
    embeddings = set()
    if not decay_embeddings and hasattr(model, "get_input_embeddings"):
        embeddings = {id(model.get_input_embeddings().weight)}
    decayed = [p for p in params if p.ndim >= 2 and id(p) not in embeddings]
    exempt = [p for p in params if p.ndim < 2 or id(p) in embeddings]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": exempt, "weight_decay": 0.0}]


def build_adamw(
    model: nn.Module,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    decay_all_params: bool = False,
    fused: bool | None = None,
    decay_embeddings: bool = True,
    mup: Mup | None = None,
) -> torch.optim.AdamW:
    """AdamW over `model` with norm/bias exemption; `fused=None` fuses on CUDA parameters.
    With `mup`, one group per role with µP's lr and decay at that width."""
    if mup is None:
        groups = decay_groups(model, weight_decay, decay_all_params, decay_embeddings)
    else:
        groups = mup_adamw_groups(model, lr, weight_decay, mup, decay_all_params, decay_embeddings)
    if fused is None:
        fused = next(model.parameters()).is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused)


def mup_adamw_groups(model: nn.Module, lr: float, weight_decay: float, mup: Mup,
                     decay_all_params: bool = False, decay_embeddings: bool = True) -> list[dict]:
    """One AdamW group per role with µP's lr and weight decay at width multiplier m; the norms
    (and the embedding with `decay_embeddings=False`) are exempt from decay as in `decay_groups`."""
    check_untied(model.config)
    settings = mup.role_settings(lr, weight_decay)
    groups = []
    for role, params in parameter_roles(model).items():
        role_lr, role_decay = settings[role]
        exempt = (role == "norm" or (role == "embedding" and not decay_embeddings)) and not decay_all_params
        if params:
            groups.append({"params": params, "lr": role_lr, "weight_decay": 0.0 if exempt else role_decay,
                           "group": role})
    return groups


class MuonWithAdamW(torch.optim.Optimizer):
    """One optimizer that steps Muon's groups with `torch.optim.Muon` and the rest with
    `torch.optim.AdamW`. The groups and state are its own (so state dicts, schedulers, clipping
    and FSDP see an ordinary optimizer), lent to the two at each step by each group's
    `algorithm` key."""

    def __init__(self, muon_groups: list[dict], adamw_groups: list[dict], muon_defaults: dict,
                 adamw_defaults: dict) -> None:
        # Each torch optimizer fills in its own defaults (momentum, ns_steps / betas, eps, ...).
        self._muon = torch.optim.Muon([{**g, "algorithm": "muon"} for g in muon_groups], **muon_defaults)
        self._adamw = torch.optim.AdamW([{**g, "algorithm": "adamw"} for g in adamw_groups], **adamw_defaults)
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
    mup: Mup | None = None,
) -> MuonWithAdamW:
    """Muon (`torch.optim.Muon`) for the hidden matrices (`lr`), AdamW for the input embedding
    (`embedding_lr`; a tied head takes it too), the head (`head_lr`) and the norms (`norm_lr`,
    never decayed); a rate left at None is `lr`.

    `match_rms_adamw` scales Muon's update to AdamW's typical RMS (Moonlight), so one lr and
    decay suit both kinds of group; torch's `original` needs a ~50x larger Muon rate. µP
    (`mup`): ttl.train.parametrization."""
    roles = parameter_roles(model)
    embedding_lr, head_lr, norm_lr = (lr if rate is None else rate
                                      for rate in (embedding_lr, head_lr, norm_lr))
    embedding_decay, head_decay = weight_decay if decay_embeddings else 0.0, weight_decay
    hidden_groups = [{"params": roles["hidden"], "lr": lr, "weight_decay": weight_decay, "group": "hidden"}]
    if mup is not None:
        check_untied(model.config)
        head_lr, head_decay = mup.role_settings(head_lr, weight_decay)["head"]
        embedding_lr, embedding_decay = mup.role_settings(embedding_lr, embedding_decay)["embedding"]
        adjust_lr_fn = "original"
        by_shape: dict[tuple[int, ...], list[nn.Parameter]] = {}
        for parameter in roles["hidden"]:
            by_shape.setdefault(tuple(parameter.shape), []).append(parameter)
        # lr x factor steps as match_rms_adamw does at the base width; wd / factor keeps lr x wd.
        hidden_groups = [{"params": params, "lr": lr * factor, "weight_decay": weight_decay / factor,
                          "group": "hidden"}
                         for shape, params in by_shape.items()
                         for factor in [muon_shape_factor(shape, mup.width)]]
    adamw_groups = [
        {"params": roles["embedding"], "lr": embedding_lr, "weight_decay": embedding_decay,
         "group": "embedding"},
        {"params": roles["head"], "lr": head_lr, "weight_decay": head_decay, "group": "head"},
        {"params": roles["norm"], "lr": norm_lr, "weight_decay": 0.0, "group": "norm"},
    ]
    if fused is None:
        fused = next(model.parameters()).is_cuda
    return MuonWithAdamW(
        muon_groups=hidden_groups,
        adamw_groups=[g for g in adamw_groups if g["params"]],
        muon_defaults={"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                       "ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn},
        adamw_defaults={"lr": lr, "betas": tuple(betas), "eps": eps, "fused": fused},
    )


def _warmup(step: int, warmup_steps: int) -> float:
    # Step 0 already gets a non-zero rate: (step + 1) / warmup, as in the original schedule.
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  min_lr_ratio: float = 0.0) -> LambdaLR:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_lr_ratio` at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _warmup(step, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def warmup_constant(optimizer: torch.optim.Optimizer, warmup_steps: int = 0) -> LambdaLR:
    """Linear warmup over `warmup_steps`, then the base learning rate."""
    return LambdaLR(optimizer, lambda step: _warmup(step, warmup_steps))


def warmup_stable_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                        decay_fraction: float = 0.2, min_lr_ratio: float = 0.0) -> LambdaLR:
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
