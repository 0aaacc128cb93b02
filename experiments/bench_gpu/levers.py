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
from ttl.train.callbacks.throughput import mfu, peak_flops
from ttl.train.optim import build_adamw


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


def _split(model, batch: dict):
    labels = batch["labels"]
    hidden = model.model(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state
    return hidden, labels


def cut_cross_entropy_loss(model, batch: dict):
    """Apple's cut-cross-entropy kernel (the package `cut-cross-entropy`)."""
    from cut_cross_entropy import linear_cross_entropy

    hidden, labels = _split(model, batch)
    return linear_cross_entropy(hidden, model.lm_head.weight, labels, shift=True)


def liger_fused_linear_cross_entropy(model, batch: dict):
    """liger-kernel's fused linear cross-entropy, outside the compiled graph."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    hidden, labels = _split(model, batch)
    flat = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    return LigerFusedLinearCrossEntropyLoss()(model.lm_head.weight, flat, labels[:, 1:].reshape(-1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="levers.json")
    parser.add_argument("--budget-s", type=float, default=240.0)
    parser.add_argument("--plan", default="levers",
                        choices=("levers", "order", "modes", "cudagraphs", "round2"))
    parser.add_argument("--profile-first", action="store_true",
                        help="profile the compiled step before the variants (before liger patches anything)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--cpu", action="store_true",
                        help="the tiny model on the CPU, no compile (tests the script; figures mean nothing)")
    args = parser.parse_args()
    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = peak_flops(name) if device == "cuda" else None
    s = settings("160m" if device == "cuda" else "tiny", device == "cuda", None)
    warmup, window, windows = (10, 20, 3) if device == "cuda" else (2, 3, 2)
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
        # Issue 14: the loss without the fp32 logits, CUDA graphs, larger micro-batches (the
        # global batch grows with them: reported apart from the recipe), the baseline, ttl again.
        "round2": [("ttl", dict(compile_model=True)),
                   ("ttl+chunked-loss", dict(compile_model=True, loss_impl="chunked")),
                   ("ttl+cut-cross-entropy",
                    dict(compile_model=True, external_loss=cut_cross_entropy_loss)),
                   ("ttl+liger-flce",
                    dict(compile_model=True, external_loss=liger_fused_linear_cross_entropy)),
                   ("ttl+cudagraphs", dict(compile_model=True, compile_mode="reduce-overhead")),
                   ("ttl micro 8", dict(compile_model=True, micro=8)),
                   ("ttl micro 16", dict(compile_model=True, micro=16)),
                   ("baseline", None),
                   ("ttl", dict(compile_model=True))],
    }
    if device == "cpu":  # no compile on the CPU path: it only tests the plumbing
        plans = {name: [(v, None if k is None else {**k, "compile_model": False}) for v, k in plan]
                 for name, plan in plans.items()}
    if device == "cuda" and args.profile_first and not args.no_profile:
        table = profile_compiled_step(s)
        Path(args.out).with_suffix(".profile.txt").write_text(table)
        print(table, flush=True)
    for variant, kwargs in plans[args.plan]:
        if time.monotonic() - start > args.budget_s:
            rows.append(dict(variant=variant, skipped="time budget"))
            continue
        torch._dynamo.reset()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        kwargs = dict(kwargs) if kwargs is not None else None
        micro = kwargs.pop("micro", None) if kwargs else None
        variant_s = dict(s, micro=micro, accumulation=1) if micro else s
        try:
            if kwargs is None:
                result = run_baseline(variant_s, warmup, window, windows, device)
            else:
                result = run_ttl(variant_s, warmup, window, windows, device, **kwargs)
        except Exception as error:
            rows.append(dict(variant=variant, error=f"{type(error).__name__}: {str(error)[:200]}"))
            print(rows[-1], flush=True)
            continue
        rates = window_rates(result["stamps"], window,
                             variant_s["micro"] * variant_s["seq_len"] * variant_s["accumulation"])
        rate = statistics.median(rates)
        rows.append(dict(variant=variant, micro_batch=variant_s["micro"], tokens_per_s=round(rate),
                         window_rates=[round(r) for r in rates],
                         first_loss=round(result["losses"][0], 4),
                         mfu=round(mfu(rate, result["flops"], peak), 4) if peak else None,
                         mfu_all_params=(round(mfu(rate, result["flops_all_params"], peak), 4)
                                         if peak else None),
                         peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2)
                         if device == "cuda" else None,
                         last_loss=round(result["losses"][-1], 4)))
        print(json.dumps(rows[-1]), flush=True)
        Path(args.out).write_text(json.dumps(dict(device=name, rows=rows), indent=2))
    if (device == "cuda" and not args.no_profile and not args.profile_first
            and time.monotonic() - start < args.budget_s + 60):
        torch._dynamo.reset()
        table = profile_compiled_step(s)
        Path(args.out).with_suffix(".profile.txt").write_text(table)
        print(table)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
