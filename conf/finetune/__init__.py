"""Configs of `python -m ttl.finetune` (its Hydra config_path): finetune.yaml and the groups
only fine-tuning has (task/, recipe/); it reuses conf/'s trainer/, optimizer/, callbacks/,
logger/ and hydra/ through its search path."""

import ttl.finetune.config  # noqa: F401  (registers finetune_schema on import)
