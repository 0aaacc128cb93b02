"""Tokens/s and MFU of ttl's training step against a TeenyTinyLlama-style loop, in one run.

On a GPU: the 160m and 460m models at seq 2048 in bf16, each with
  - baseline: the original's way (Hugging Face model, Accelerate-style loop with bf16
    autocast, foreach AdamW, SDPA attention, no compile, the loss read back every step);
  - ttl: `CausalLMModule` in a Lightning Trainer with the `trainer=h100` hardware config
    (bf16-mixed, TF32, fused AdamW, torch.compile in place, micro-batch from the config);
and, for 160m, ttl without compile and ttl with liger-kernel's fused Triton kernels (when
the package is importable) to attribute the gain. Prints a table, writes it as JSON.
On a CPU (no GPU, or --cpu) the same script runs the tiny model in fp32, for tests.

    python experiments/bench_gpu/bench.py [--out bench_gpu.json] [--budget-s 480]

Needs only torch, lightning, transformers and PyYAML (no Hydra), so it runs on a bare GPU
machine with PYTHONPATH pointing at the repository.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ttl.model import (  # noqa: E402
    build_model,
    count_parameters,
    flops_per_token,
    llama_config,
    matmul_parameters,
)
from ttl.train.callbacks.throughput import mfu, peak_flops  # noqa: E402
from ttl.train.module import CausalLMModule  # noqa: E402
from ttl.train.optim import build_adamw, warmup_cosine  # noqa: E402


def load_yaml(*parts: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / Path(*parts)).read_text()) or {}


def trainer_preset(name: str) -> dict:
    """conf/trainer/<name>.yaml over the files its defaults list names (gpu.yaml) and over the
    schemas' defaults (TrainerConfig, HardwareConfig): Lightning's arguments and ttl's own."""
    from dataclasses import asdict

    from ttl.train.config import HardwareConfig, TrainerConfig

    merged = {"trainer": asdict(TrainerConfig()), "hardware": asdict(HardwareConfig())}
    body = load_yaml("trainer", f"{name}.yaml")
    for parent in body.pop("defaults", []):
        if isinstance(parent, str) and parent != "_self_":
            deep_update(merged, trainer_preset(parent))
    return deep_update(merged, body)


def deep_update(into: dict, values: dict) -> dict:
    """`into` with `values` merged in, mappings key by key (as Hydra merges configs)."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_update(into[key], value)
        else:
            into[key] = value
    return into


def settings(model_name: str, on_gpu: bool, seq_len: int | None) -> dict:
    from ttl.train.config import model_preset

    model = model_preset(model_name)
    # A trainer/ config: Lightning's arguments under `trainer`, ttl's own under `hardware`.
    trainer_config = trainer_preset("h100" if on_gpu else "cpu")
    hardware = {**trainer_config["trainer"], **trainer_config["hardware"]}
    seq = seq_len or model["max_position_embeddings"]
    recipe = model["recipe"]
    micro = hardware["micro_batch_by_model"][model_name]
    sequences = recipe["tokens_per_step"] // seq
    return dict(model=model, hardware=hardware, seq_len=seq, micro=micro,
                accumulation=max(1, sequences // micro), lr=recipe["lr"])


def batches(n: int, micro: int, seq: int, vocab: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(4, vocab, (n * micro, seq), generator=generator)
    return DataLoader(blocks, batch_size=micro, pin_memory=torch.cuda.is_available())


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def set_backend_flags(device: str, tf32: bool, sdpa_backend: str | None = None) -> None:
    """Set every global backend flag a variant depends on, so that no variant inherits another's
    (the order of variants must not change any figure). sdpa_backend None: all backends, as
    PyTorch's default; "cudnn" or "flash": that backend only."""
    if device != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.enable_flash_sdp(sdpa_backend in (None, "flash"))
    torch.backends.cuda.enable_cudnn_sdp(sdpa_backend in (None, "cudnn"))
    torch.backends.cuda.enable_mem_efficient_sdp(sdpa_backend is None)
    torch.backends.cuda.enable_math_sdp(True)


def flops_both_ways(model, config, seq_len: int) -> dict:
    """FLOPs per token without the input embedding (what ttl logs, torchtitan's count) and with
    every parameter (the count of earlier figures)."""
    return dict(flops=flops_per_token(matmul_parameters(model), config.num_hidden_layers,
                                      config.hidden_size, seq_len),
                flops_all_params=flops_per_token(count_parameters(model), config.num_hidden_layers,
                                                 config.hidden_size, seq_len))


def window_rates(stamps: list[float], steps_per_window: int, tokens_per_step: int) -> list[float]:
    return [steps_per_window * tokens_per_step / (b - a) for a, b in zip(stamps, stamps[1:], strict=False)]


def run_baseline(s: dict, warmup: int, window: int, windows: int, device: str) -> dict:
    """The original's loop: HF model in fp32 weights, bf16 autocast, AdamW, loss.item(); TF32 on
    and PyTorch's default attention backends, as the original ran."""
    torch.manual_seed(0)
    set_backend_flags(device, tf32=True)
    config = llama_config(s["model"], "sdpa")
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["lr"], betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=0.01)
    total = warmup + window * windows
    scheduler = warmup_cosine(optimizer, warmup_steps=10, total_steps=total)
    boundaries = {warmup + i * window for i in range(windows + 1)}
    stamps, losses = [], []
    micro_index = step = 0
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model.train()
    for batch in batches(total * s["accumulation"], s["micro"], s["seq_len"], config.vocab_size):
        batch = batch.to(device, non_blocking=True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss / s["accumulation"]
        loss.backward()
        losses.append(loss.item() * s["accumulation"])  # logged every micro-batch, as the original
        micro_index += 1
        if micro_index % s["accumulation"] == 0:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step in boundaries:
                sync()
                stamps.append(time.perf_counter())
    return dict(stamps=stamps, losses=losses, params=count_parameters(model),
                **flops_both_ways(model, config, s["seq_len"]))


class _Stamps(pl.Callback):
    def __init__(self, boundaries: set[int]) -> None:
        self.boundaries, self.stamps, self.losses = boundaries, [], []
        self._last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not self.losses:  # the first micro-batch's loss, to compare with the baseline
            self.losses.append(float(outputs["loss"]))
        if step in self.boundaries and step != self._last_step:
            sync()
            self.stamps.append(time.perf_counter())
            self.losses.append(float(outputs["loss"]))
        self._last_step = step


def run_ttl(s: dict, warmup: int, window: int, windows: int, device: str,
            compile_model: bool, liger: bool = False, sdpa_backend: str | None = None,
            compile_mode: str | None = None, loss_impl: str = "hf", external_loss=None) -> dict:
    """ttl's own training step: CausalLMModule in a Lightning Trainer, hardware from conf/.

    sdpa_backend: None lets PyTorch choose; "cudnn" or "flash" leaves SDPA only that backend.
    loss_impl: ttl's `hardware.loss_impl`. external_loss(model, batch) -> loss replaces the loss
    with another package's kernel, run eagerly while the decoder stack is compiled.
    """
    torch.manual_seed(0)
    hardware = s["hardware"]
    set_backend_flags(device, tf32=bool(hardware.get("tf32")), sdpa_backend=sdpa_backend)
    config = llama_config(s["model"], "sdpa")
    total = warmup + window * windows
    module = CausalLMModule(
        config,
        partial(build_adamw, lr=s["lr"], weight_decay=0.01),
        partial(warmup_cosine, warmup_steps=10, total_steps=total),
        tokens_per_step=s["micro"] * s["seq_len"] * s["accumulation"],
        compile_model=compile_model and external_loss is None,
        compile_mode=compile_mode,
        loss_impl="chunked" if external_loss is not None else loss_impl,
    )
    if external_loss is not None:
        module._chunked_loss = external_loss
        if compile_model:
            module.model.model.compile(mode=compile_mode)
    if liger:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=True, model=module.model)
    stamps = _Stamps({warmup + i * window for i in range(windows + 1)})
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = pl.Trainer(
            accelerator="gpu" if device == "cuda" else "cpu", devices=1,
            precision=hardware["precision"], max_steps=total,
            accumulate_grad_batches=s["accumulation"], limit_val_batches=0,
            num_sanity_val_steps=0, enable_checkpointing=False,
            logger=pl.loggers.CSVLogger(run_dir), log_every_n_steps=50,
            callbacks=[stamps, pl.callbacks.TQDMProgressBar(refresh_rate=10)],
            enable_model_summary=False, default_root_dir=run_dir,
        )
        trainer.fit(module, train_dataloaders=batches(total * s["accumulation"], s["micro"],
                                                       s["seq_len"], config.vocab_size))
    n = count_parameters(module.model)
    keys = [k for k in module.model.state_dict() if "_orig_mod" in k]
    return dict(stamps=stamps.stamps, losses=stamps.losses, params=n, orig_mod_keys=len(keys),
                **flops_both_ways(module.model, config, s["seq_len"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_gpu.json")
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--cpu", action="store_true", help="tiny model on the CPU (for tests)")
    args = parser.parse_args()
    on_gpu = torch.cuda.is_available() and not args.cpu
    device = "cuda" if on_gpu else "cpu"
    name = torch.cuda.get_device_name() if on_gpu else "cpu"
    peak = peak_flops(name) if on_gpu else None
    if on_gpu:
        plan = [("160m", "baseline"), ("160m", "ttl"), ("460m", "baseline"), ("460m", "ttl"),
                ("160m", "ttl-nocompile"), ("160m", "ttl+liger")]
        warmup, window, windows = 10, 20, 3
    else:
        plan = [("tiny", "baseline"), ("tiny", "ttl")]
        warmup, window, windows = 3, 4, 3
    print(f"device: {name}; torch {torch.__version__}; peak bf16 {peak}")
    start, rows = time.monotonic(), []
    for model_name, variant in plan:
        if time.monotonic() - start > args.budget_s:
            rows.append(dict(model=model_name, variant=variant, skipped="time budget"))
            continue
        s = settings(model_name, on_gpu, None)
        t0 = time.monotonic()
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        try:
            if variant == "baseline":
                result = run_baseline(s, warmup, window, windows, device)
            else:
                result = run_ttl(s, warmup, window, windows, device,
                                 compile_model=on_gpu and variant in ("ttl", "ttl+liger"),
                                 liger=variant == "ttl+liger")
        except Exception as error:  # a lever that fails is reported, not fatal
            rows.append(dict(model=model_name, variant=variant,
                             error=f"{type(error).__name__}: {str(error)[:300]}"))
            print(rows[-1], flush=True)
            continue
        tokens_per_step = s["micro"] * s["seq_len"] * s["accumulation"]
        rates = window_rates(result["stamps"], window, tokens_per_step)
        rate = statistics.median(rates)
        row = dict(model=model_name, variant=variant, params=result["params"],
                   micro_batch=s["micro"], accumulation=s["accumulation"], seq_len=s["seq_len"],
                   tokens_per_s=round(rate), window_rates=[round(r) for r in rates],
                   mfu=round(mfu(rate, result["flops"], peak), 4) if peak else None,
                   mfu_all_params=round(mfu(rate, result["flops_all_params"], peak), 4) if peak else None,
                   peak_mem_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None,
                   first_loss=round(result["losses"][0], 4), last_loss=round(result["losses"][-1], 4),
                   orig_mod_keys=result.get("orig_mod_keys"), wall_s=round(time.monotonic() - t0, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
        Path(args.out).write_text(json.dumps(dict(device=name, rows=rows), indent=2))
        del result
        gc.collect()
        if on_gpu:
            torch.cuda.empty_cache()
            torch._dynamo.reset()
    Path(args.out).write_text(json.dumps(dict(device=name, torch=torch.__version__, rows=rows), indent=2))
    baseline = {r["model"]: r["tokens_per_s"] for r in rows
                if r.get("variant") == "baseline" and "tokens_per_s" in r}
    print("\nMFU: per device, 6N + 12LHT over the peak bf16 FLOP/s; N without / with the input embedding")
    print(f"{'model':<6} {'variant':<14} {'tokens/s':>10} {'MFU':>13} {'x baseline':>10} {'mem GiB':>8}")
    for r in rows:
        if "tokens_per_s" not in r:
            print(f"{r['model']:<6} {r['variant']:<14} {r.get('error') or r.get('skipped')}")
            continue
        ratio = r["tokens_per_s"] / baseline[r["model"]] if r["model"] in baseline else float("nan")
        mfu_text = f"{r['mfu']:.1%}/{r['mfu_all_params']:.1%}" if r["mfu"] is not None else "-"
        print(f"{r['model']:<6} {r['variant']:<14} {r['tokens_per_s']:>10,} {mfu_text:>13} "
              f"{ratio:>10.2f} {r['peak_mem_gib'] or '-':>8}")


if __name__ == "__main__":
    main()
