"""`python -m ttl.card run_dir=runs/quickstart [step=N] [repo_id=user/model] [output=PATH]`:
write the model card (`ttl.model_card`) of step N (default: the latest `step-<N>/`) into that
step directory, or `output`.
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from ttl.errors import TTLError
from ttl.model_card import write_card

DEFAULTS = {"run_dir": "???", "step": None, "repo_id": None, "output": None}


def main(argv: list[str] | None = None) -> int:
    """Command line: run_dir=DIR [step=N] [repo_id=ID] [output=PATH]."""
    args = sys.argv[1:] if argv is None else argv
    try:
        unknown = [a for a in args if "=" not in a or a.split("=", 1)[0] not in DEFAULTS]
        if unknown:
            raise TTLError(f"unknown argument {unknown[0]!r}; use key=value with keys {', '.join(DEFAULTS)}")
        cfg = OmegaConf.merge(OmegaConf.create(DEFAULTS), OmegaConf.from_dotlist(args))
        if OmegaConf.is_missing(cfg, "run_dir"):
            raise TTLError("run_dir is required: python -m ttl.card run_dir=runs/NAME")
        path = write_card(cfg.run_dir, cfg.step, cfg.repo_id, cfg.output)
    except TTLError as error:
        print(f"ttl.card: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
