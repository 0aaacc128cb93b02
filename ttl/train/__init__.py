"""Pre-training: `python -m ttl.train [overrides]` (the Hydra entry in `__main__`); the modules are
listed in docs/architecture.md."""
