"""`python -m ttl.data.prepare data_path=... tokenizer=... output_dir=... [key=value ...]`:
raw text + a tokenizer -> OUTPUT_DIR/{train,validation}/shard-*.parquet and manifest.json
(the work: ttl.data.shardset; docs/data.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ttl.cli import first_missing, hydra_command, store
from ttl.data.config import PrepareConfig
from ttl.data.hub import push_shards
from ttl.data.shardset import prepare, summary

USAGE = "python -m ttl.data.prepare data_path=... tokenizer=DIR output_dir=DIR"
store(PrepareConfig, "prepare_schema")


def _prepare(cfg: DictConfig) -> None:
    first_missing(cfg, USAGE)
    settings: PrepareConfig = OmegaConf.to_object(cfg)
    start = time.perf_counter()
    manifest = prepare(settings)
    seconds = time.perf_counter() - start
    for name, split in manifest.splits.items():
        if split.empty_documents:
            print(f"ttl.data.prepare: warning: skipped {split.empty_documents:,} empty documents "
                  f"in the {name} split", file=sys.stderr)
    print("\n".join(summary(manifest, settings.output_dir, seconds)))
    if settings.push_to_hub:
        print(f"pushed to {push_shards(Path(settings.output_dir), settings.push_to_hub, settings.private)}")


main = hydra_command("ttl.data.prepare", "prepare", _prepare)

if __name__ == "__main__":
    sys.exit(main())
