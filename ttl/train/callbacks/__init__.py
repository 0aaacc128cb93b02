"""Lightning callbacks: Hugging Face checkpoint exports and the rest of a run's artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl

import ttl.lightning_api  # noqa: F401  (silences Lightning's noise for every run that builds callbacks)
from ttl.cli import build


def build_callbacks(nodes: Mapping[str, Any], **context: Any) -> dict[str, pl.Callback]:
    """A `callbacks:` group's nodes by name (`~callbacks.NAME` leaves one out), built with the
    `context` values each signature names; the emissions monitor is built first and handed to the
    callbacks that report energy (`emissions=`), so none looks for another at run time."""
    nodes = {name: node for name, node in (nodes or {}).items() if node is not None}
    emissions = build(nodes["emissions"], **context) if "emissions" in nodes else None
    return {name: emissions if name == "emissions" else build(node, **context, emissions=emissions)
            for name, node in nodes.items()}
