"""The cost of each recipe switch in training tokens/s, on this machine's CPU.

Every arm is the study's own configuration (`experiment=recipe_study recipe_switch=<arm>`,
composed by Hydra as `ttl.train` composes it, module/optimizer/scheduler instantiated as
`ttl.train.pretrain` does) trained in a Lightning Trainer with the logging and progress bar of a
real run (bench_overhead.py's setup) on the same synthetic batches: micro-batches of the
study's shape, documents of 800 tokens on average (the layout copy's mean with the study's
4,096-token vocabulary) marked by position ids for `doc_masking`. Arms alternate within each
repeat; prints each arm's median tokens/s and its ratio to `published` measured in the same run.

    python experiments/recipe_study/bench_switch_cost.py [--steps 30] [--repeats 3] [--out F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ttl.cli import register_resolvers
from ttl.data.packing import position_ids_for
from ttl.model import llama_config
from ttl.train.plan import plan_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/: bench_common
from bench_common import timed_fit  # noqa: E402

ARMS = ["published", "beta2", "weight_decay", "lr_floor", "wsd", "z_loss", "tied", "zero_init",
        "doc_masking"]
WARMUP_STEPS = 3
MEAN_DOCUMENT_TOKENS = 800


def study_config(arm: str):
    """The study's resolved config for one arm (`[a,b]` selects several switches)."""
    register_resolvers()
    with initialize_config_module("ttl.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=recipe_study", f"recipe_switch={arm}"])
    OmegaConf.resolve(cfg)
    return cfg


def synthetic_batches(steps: int, micro: int, seq_len: int, vocab: int, masking: bool) -> list[dict]:
    """The same token ids for every arm; position ids restarting at document starts when
    `masking` (documents of exponentially distributed length, mean MEAN_DOCUMENT_TOKENS)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        ids = torch.from_numpy(rng.integers(4, vocab, (micro, seq_len)))
        batch = {"input_ids": ids}
        if masking:
            starts = []
            for _ in range(micro):
                cuts = np.cumsum(rng.exponential(MEAN_DOCUMENT_TOKENS, 8).astype(int) + 1)
                starts.append(cuts[cuts < seq_len])
            batch["position_ids"] = torch.from_numpy(position_ids_for(starts, seq_len))
        out.append(batch)
    return out


def tokens_per_s(arm: str, steps: int) -> float:
    """Training tokens/s of one arm over `steps` steps (the first WARMUP_STEPS excluded)."""
    cfg = study_config(arm)
    plan = plan_batch(cfg)
    torch.manual_seed(0)
    module = instantiate(cfg.module)(
        config=llama_config(cfg.model, "sdpa"), optimizer_factory=instantiate(cfg.optimizer),
        scheduler_factory=instantiate(cfg.scheduler), tokens_per_step=plan.tokens_per_step)
    batches = synthetic_batches(steps, plan.micro_batch_size, cfg.data.seq_len, cfg.model.vocab_size,
                                cfg.data.document_masking)
    stamps = timed_fit(module, torch.utils.data.DataLoader(batches, batch_size=None), steps)
    measured = stamps.stamps[WARMUP_STEPS:]
    return (len(measured) - 1) * plan.tokens_per_step / (measured[-1] - measured[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arms", nargs="+", default=ARMS, help="recipe_switch values ([a,b] for several)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if "published" not in args.arms:
        args.arms = ["published", *args.arms]
    rates: dict[str, list[float]] = {arm: [] for arm in args.arms}
    for _ in range(args.repeats):
        for arm in args.arms:
            rates[arm].append(tokens_per_s(arm, args.steps))
    base = statistics.median(rates["published"])
    print(f"threads: {torch.get_num_threads()}, {args.steps} steps per run ({WARMUP_STEPS} excluded), "
          f"{args.repeats} alternating repeats")
    rows = []
    for arm in args.arms:
        median = statistics.median(rates[arm])
        rows.append({"arm": arm, "tokens_per_s": median, "ratio": median / base, "runs": rates[arm]})
        runs = ", ".join(f"{r:,.0f}" for r in rates[arm])
        print(f"{arm:<24} {median:9,.0f} tokens/s  x{median / base:.3f} published  (runs: {runs})")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "steps": args.steps, "repeats": args.repeats,
                                        "threads": torch.get_num_threads()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
