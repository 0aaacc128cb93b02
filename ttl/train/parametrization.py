"""The maximal-update parametrization (µP, Yang et al. 2022, "Tensor Programs V"): each parameter's
role, its initialisation and its optimizer settings as functions of the width multiplier
m = hidden_size / base_width. The rules' table, the folded head multiplier and the attention
scale: docs/recipes.md; at the base width (the 160m's, 768) every rule is the identity. TP5's
input and output multipliers (`model.input_multiplier`, `model.output_multiplier`) are tuned on
a proxy and kept at every width, the 160m included. Why:

- **Weight decay is scaled by m where the lr is divided by m**: torch's AdamW decays by lr · wd
  per step, so keeping lr · wd fixed keeps the decay's time scale the same at every width
  (Wortsman et al. 2023; Wang & Aitchison 2024), and a tuned wd transfers as the lr does.
- **Muon** orthogonalises the hidden matrices' update; µP asks for a spectral norm of order
  sqrt(fan_out / fan_in), independent of the width (Yang, Simon & Bernstein 2023). torch's
  `original` adjustment, lr · sqrt(max(1, A / B)), is that; `match_rms_adamw`,
  lr · 0.2 · sqrt(max(A, B)), grows with sqrt(width). Under µP the Muon groups use `original`
  with a per-shape factor fixed at the base width, so at the base width each step equals
  `match_rms_adamw`'s (the published Muon arm); their decay is divided by the same factor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ttl.errors import TTLError

PARAMETRIZATIONS = ("standard", "mup")
ROLES = ("embedding", "hidden", "head", "norm")


def width_multiplier(parametrization: str, hidden_size: int, base_width: int) -> float | None:
    """m = hidden_size / base_width under µP; None in the standard parametrization."""
    if parametrization not in PARAMETRIZATIONS:
        raise TTLError(f"model.parametrization={parametrization!r}: choose one of "
                       f"{', '.join(PARAMETRIZATIONS)}")
    if parametrization == "standard":
        return None
    if base_width < 1:
        raise TTLError(f"model.base_width={base_width}: must be at least 1")
    return hidden_size / base_width


@dataclass(frozen=True)
class Mup:
    """µP at one width: m = hidden_size / base_width, and TP5's input and output multipliers:
    the embedding's init and AdamW lr are `input` times the published, the head's `output` / m."""

    width: float
    input: float = 1.0
    output: float = 1.0

    def scales(self) -> dict[str, float]:
        """Each role's AdamW lr as a multiple of the published; the embedding's and the head's
        init scale alike (a folded multiplier), the hidden matrices' by 1 / sqrt(m)."""
        return {"embedding": self.input, "hidden": 1 / self.width, "head": self.output / self.width,
                "norm": 1.0}

    def role_settings(self, lr: float, weight_decay: float) -> dict[str, tuple[float, float]]:
        """(lr, weight decay) of each role, before the exemptions (norms and, optionally, the
        embedding are not decayed); lr x wd stays the published."""
        return {role: (lr * scale, weight_decay / scale) for role, scale in self.scales().items()}

    @torch.no_grad()
    def initialise(self, model: nn.Module) -> None:
        """Rescale a freshly initialised model: hidden matrices' std / sqrt(m), the head's
        x output / m, the embedding's x input; at m = 1 with both multipliers 1 nothing changes
        (the published initialisation, bit for bit)."""
        check_untied(model.config)
        scales = self.scales() | {"hidden": 1 / math.sqrt(self.width)}
        for role, parameters in parameter_roles(model).items():
            for parameter in parameters if scales[role] != 1 else ():
                parameter.mul_(scales[role])


def mup_of(model) -> Mup | None:
    """The µP a model config asks for (None: the standard parametrization)."""
    m = width_multiplier(model.parametrization, model.hidden_size, model.base_width)
    return None if m is None else Mup(m, model.input_multiplier, model.output_multiplier)


def parameter_roles(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The trainable parameters by role: the input embedding, the hidden matrices (every 2-D
    weight inside the decoder blocks), the output head (absent when tied to the embedding: it
    is then the embedding's tensor) and the norms (every 1-D parameter)."""
    embedding = model.get_input_embeddings().weight
    head_module = model.get_output_embeddings()
    head = head_module.weight if head_module is not None else None
    roles: dict[str, list[nn.Parameter]] = {role: [] for role in ROLES}
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter is embedding:
            roles["embedding"].append(parameter)
        elif head is not None and parameter is head:
            roles["head"].append(parameter)
        elif parameter.ndim == 2:
            roles["hidden"].append(parameter)
        elif parameter.ndim == 1:
            roles["norm"].append(parameter)
        else:
            raise TTLError(f"a parameter of shape {tuple(parameter.shape)} has no role (embedding, "
                           "hidden matrix, head or norm)")
    return roles


def check_untied(config) -> None:
    """µP gives the embedding and the head different rules: a tied pair cannot follow both."""
    if getattr(config, "tie_word_embeddings", False):
        raise TTLError("model.parametrization=mup needs untied embeddings (model.tie_word_embeddings=false): "
                       "µP scales the output head, not the input embedding")


def muon_shape_factor(shape: Iterable[int], multiplier: float) -> float:
    """The factor on the µP Muon learning rate of a hidden matrix of `shape` (rows A, columns B)
    with torch's `original` adjustment: at any m, each step is the base shape's `match_rms_adamw` step."""
    rows, columns = list(shape)[:2]
    return 0.2 * math.sqrt(max(rows, columns) / multiplier) / math.sqrt(max(1.0, rows / columns))

