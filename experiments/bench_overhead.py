"""Training-step overhead of ttl's loop against a plain PyTorch loop, on this machine's CPU.

Both loops train the same Hugging Face Llama (same initial weights) on the same batches with
the same AdamW + warmup-cosine schedule; ttl's side is `CausalLMModule` inside a Lightning
Trainer with the logging and progress bar a real run has. Prints tokens/s of each (median of
`--repeats` alternating runs), the ratio ttl / plain, and the largest loss difference between
the two loops (they must compute the same thing).

    python experiments/bench_overhead.py [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from functools import partial

import torch
from bench_common import timed_fit
from torch.utils.data import DataLoader

from ttl.model import build_model, llama_config
from ttl.train.module import CausalLMModule
from ttl.train.optim import build_adamw, warmup_cosine

MODEL = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
             intermediate_size=1024, vocab_size=4096, max_position_embeddings=256)
SEQ_LEN, MICRO_BATCH, WARMUP_STEPS = 256, 8, 3


def batches(steps: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(4, MODEL["vocab_size"], (steps * MICRO_BATCH, SEQ_LEN), generator=generator)
    return DataLoader(blocks, batch_size=MICRO_BATCH, shuffle=False)


def factories(steps: int):
    return (partial(build_adamw, lr=6e-4, weight_decay=0.01),
            partial(warmup_cosine, warmup_steps=5, total_steps=steps))


def plain_loop(steps: int) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    model = build_model(llama_config(MODEL))
    make_optimizer, make_scheduler = factories(steps)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer)
    model.train()
    losses, stamps = [], []
    for batch in batches(steps):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        stamps.append(time.perf_counter())
    return _rate(stamps), losses


def ttl_loop(steps: int) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    make_optimizer, make_scheduler = factories(steps)
    module = CausalLMModule(llama_config(MODEL), make_optimizer, make_scheduler,
                            tokens_per_step=MICRO_BATCH * SEQ_LEN)
    stamps = timed_fit(module, batches(steps), steps)
    return _rate(stamps.stamps), stamps.losses


def _rate(stamps: list[float]) -> float:
    measured = stamps[WARMUP_STEPS:]
    return (len(measured) - 1) * MICRO_BATCH * SEQ_LEN / (measured[-1] - measured[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    plain_rates, ttl_rates, diffs = [], [], []
    for _ in range(args.repeats):
        rate, plain_losses = plain_loop(args.steps)
        plain_rates.append(rate)
        rate, ttl_losses = ttl_loop(args.steps)
        ttl_rates.append(rate)
        diffs.append(max(abs(a - b) for a, b in zip(plain_losses, ttl_losses, strict=True)))
    plain, ours = statistics.median(plain_rates), statistics.median(ttl_rates)
    print(f"threads: {torch.get_num_threads()}, model: {MODEL}, seq {SEQ_LEN}, micro-batch {MICRO_BATCH}")
    def runs(rates: list[float]) -> str:
        return ", ".join(f"{r:,.0f}" for r in rates)

    print(f"plain PyTorch loop : {plain:10,.0f} tokens/s  (runs: {runs(plain_rates)})")
    print(f"ttl (Lightning)    : {ours:10,.0f} tokens/s  (runs: {runs(ttl_rates)})")
    print(f"ratio ttl / plain  : {ours / plain:.3f}")
    print(f"max |loss difference| between the loops: {max(diffs):.2e}")


if __name__ == "__main__":
    main()
