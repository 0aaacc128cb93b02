"""Lightning callbacks: Hugging Face checkpoint exports and the rest of a run's artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl

from ttl.cli import build


def build_callbacks(nodes: Mapping[str, Any], **context: Any) -> dict[str, pl.Callback]:
    """Every node of a `callbacks:` group by name (one dropped with `~callbacks.NAME` is None and
    left out), built with the `context` values its signature names. The emissions monitor is
    built first and handed to the callbacks that report energy (`emissions=`), so no callback
    looks for another at run time."""
    nodes = {name: node for name, node in (nodes or {}).items() if node is not None}
    emissions = build(nodes["emissions"], **context) if "emissions" in nodes else None
    return {name: emissions if name == "emissions" else build(node, **context, emissions=emissions)
            for name, node in nodes.items()}
