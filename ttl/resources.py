"""Paths of the files that ship inside the package, and the OmegaConf resolvers that name them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf


def sample_corpus_dir() -> Path:
    """Directory of the Portuguese sample corpus shipped with ttl (train-/validation- JSONL)."""
    return Path(str(resources.files("ttl.data") / "sample"))


def register_resolvers() -> None:
    """Register `${ttl.sample_corpus:}` so configs can point at the shipped sample corpus."""
    if not OmegaConf.has_resolver("ttl.sample_corpus"):
        OmegaConf.register_new_resolver("ttl.sample_corpus", lambda: str(sample_corpus_dir()))
