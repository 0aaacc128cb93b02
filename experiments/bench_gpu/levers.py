"""Second GPU pass on the 160m model: ttl again (noise), cuDNN attention, liger-kernel without
compile, and a profile of the compiled training step (top CUDA kernels by time).

    python experiments/bench_gpu/levers.py [--out levers.json] [--budget-s 240]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from bench import ROOT, run_baseline, run_ttl, set_backend_flags, settings, window_rates  # noqa: F401

from ttl.model import build_model, llama_config
from ttl.optim import build_adamw
from ttl.perf import mfu, peak_flops


def profile_compiled_step(s: dict, steps: int = 6) -> str:
    # Run this before anything imports liger-kernel: it patches the Llama classes globally.
    set_backend_flags("cuda", tf32=True)
    model = build_model(llama_config(s["model"], "sdpa")).cuda()
    model.compile()
    optimizer = build_adamw(model, lr=6e-4)
    batch = torch.randint(4, 32000, (s["micro"], s["seq_len"]), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(4):
        step()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="levers.json")
    parser.add_argument("--budget-s", type=float, default=240.0)
    parser.add_argument("--plan", choices=("levers", "order", "modes", "cudagraphs"), default="levers")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    name = torch.cuda.get_device_name()
    peak = peak_flops(name)
    s = settings("160m", True, None)
    warmup, window, windows = 10, 20, 3
    rows, start = [], time.monotonic()
    plans = {
        "levers": [("ttl", dict(compile_model=True)),
                   ("ttl+cudnn-attn", dict(compile_model=True, sdpa_backend="cudnn")),
                   ("ttl+liger-nocompile", dict(compile_model=False, liger=True))],
        # Order effects and the attention backend: ttl first and last, baseline between.
        "order": [("ttl", dict(compile_model=True)),
                  ("ttl+flash-attn", dict(compile_model=True, sdpa_backend="flash")),
                  ("baseline", None),
                  ("ttl", dict(compile_model=True))],
        # torch.compile modes: autotuned matrix products, then CUDA graphs.
        "modes": [("ttl", dict(compile_model=True)),
                  ("ttl+max-autotune", dict(compile_model=True, compile_mode="max-autotune-no-cudagraphs")),
                  ("ttl+cudagraphs", dict(compile_model=True, compile_mode="reduce-overhead"))],
        # CUDA graphs alone (the modes plan spent its budget on autotuning first), ttl first
        # and last for the spread, the baseline for the ratio.
        "cudagraphs": [("ttl", dict(compile_model=True)),
                       ("ttl+cudagraphs", dict(compile_model=True, compile_mode="reduce-overhead")),
                       ("baseline", None),
                       ("ttl", dict(compile_model=True))],
    }
    for variant, kwargs in plans[args.plan]:
        if time.monotonic() - start > args.budget_s:
            rows.append(dict(variant=variant, skipped="time budget"))
            continue
        torch._dynamo.reset()
        torch.cuda.reset_peak_memory_stats()
        try:
            if kwargs is None:
                result = run_baseline(s, warmup, window, windows, "cuda")
            else:
                result = run_ttl(s, warmup, window, windows, "cuda", **kwargs)
        except Exception as error:
            rows.append(dict(variant=variant, error=f"{type(error).__name__}: {str(error)[:200]}"))
            print(rows[-1], flush=True)
            continue
        rates = window_rates(result["stamps"], window, s["micro"] * s["seq_len"] * s["accumulation"])
        rate = statistics.median(rates)
        rows.append(dict(variant=variant, tokens_per_s=round(rate), window_rates=[round(r) for r in rates],
                         mfu=round(mfu(rate, result["flops"], peak), 4),
                         mfu_all_params=round(mfu(rate, result["flops_all_params"], peak), 4),
                         peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                         last_loss=round(result["losses"][-1], 4)))
        print(json.dumps(rows[-1]), flush=True)
        Path(args.out).write_text(json.dumps(dict(device=name, rows=rows), indent=2))
    if not args.no_profile and time.monotonic() - start < args.budget_s + 60:
        torch._dynamo.reset()
        table = profile_compiled_step(s)
        Path(args.out).with_suffix(".profile.txt").write_text(table)
        print(table)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
