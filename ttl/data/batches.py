"""Packed rows -> the batch dict the LightningModule takes.

Document masking adds `position_ids` restarting at every document: Hugging Face Llama (with
`use_cache=False`, which ttl sets) turns them into a block-diagonal causal mask (flash-attention 2
into variable-length sequences), so no (B, T, T) mask is built or shipped by the data loader.
With `eos` packing a document's first token is no target (labels -100): the previous document
cannot predict it.
"""

from __future__ import annotations

import numpy as np
import torch

from ttl.data.packing import position_ids_for

FIELDS = ("input_ids", "position_ids", "labels")


def pack_batch(ids: np.ndarray, doc_starts: list[np.ndarray], document_masking: bool,
               packing: str) -> torch.Tensor:
    """One int64 tensor (planes, B, T) holding the first 1, 2 or 3 of a batch's FIELDS: loader
    workers pay a shared-memory segment per tensor, so one per batch keeps masking nearly free."""
    planes = [ids.astype(np.int64)]
    if document_masking:
        planes.append(position_ids_for(doc_starts, ids.shape[1]))
        if packing == "eos":
            labels = planes[0].copy()
            for row, starts in enumerate(doc_starts):
                labels[row, starts[starts > 0]] = -100
            planes.append(labels)
    return torch.from_numpy(np.stack(planes))


def lossless_batch(ids: np.ndarray) -> torch.Tensor:
    """A packed batch over `ids` that carries no loss (every label -100), to pad a validation rank."""
    positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape)
    labels = np.full(ids.shape, -100, dtype=np.int64)
    return torch.from_numpy(np.stack([ids.astype(np.int64), positions, labels]))


def unpack_batch(packed: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch dict (views, no copy) of a `pack_batch` tensor."""
    return {name: packed[i] for i, name in enumerate(FIELDS[: packed.shape[0]])}

