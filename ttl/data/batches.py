"""Packed rows -> the batch dict the LightningModule takes.

Always `input_ids` (int64, (B, T)). With document masking also `position_ids` that restart
at every document start: Hugging Face Llama (with `use_cache=False`, which ttl sets) turns
restarting positions into a block-diagonal causal mask for sdpa and eager attention, and
flash-attention 2 reads them as variable-length sequences, so no (B, T, T) mask has to be
built or shipped by the data loader. With the `eos` convention the first token of a document
is not a target (labels -100 there): it cannot be predicted from the previous document.
"""

from __future__ import annotations

import numpy as np
import torch

from ttl.data.packing import position_ids_for

# Planes of a packed batch tensor, in order; a batch holds the first 1, 2 or 3 of them.
FIELDS = ("input_ids", "position_ids", "labels")


def pack_batch(ids: np.ndarray, doc_starts: list[np.ndarray], document_masking: bool,
               packing: str) -> torch.Tensor:
    """One int64 tensor (planes, B, T) holding a batch's fields (see FIELDS).

    Loader workers hand every tensor to the main process through its own shared-memory
    segment, a cost paid per tensor: one tensor per batch keeps masking nearly free.
    """
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
    """A packed batch over `ids` that carries no loss: every label is -100.

    It pads a rank that has fewer validation batches than the others: under FSDP each forward
    pass is collective, so all ranks must run the same number of them.
    """
    positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape)
    labels = np.full(ids.shape, -100, dtype=np.int64)
    return torch.from_numpy(np.stack([ids.astype(np.int64), positions, labels]))


def unpack_batch(packed: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch dict (views, no copy) of a `pack_batch` tensor."""
    return {name: packed[i] for i, name in enumerate(FIELDS[: packed.shape[0]])}

