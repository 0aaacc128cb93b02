"""The run plan printed by `dry_run=true` and at the start of every run."""

from __future__ import annotations

from omegaconf import DictConfig

from ttl.config import BatchPlan
from ttl.model import build_model, count_parameters, flops_per_token, llama_config, matmul_parameters


def describe(cfg: DictConfig, plan: BatchPlan) -> str:
    """Parameters, batch arithmetic, steps, tokens, FLOPs, devices and precision, one per line."""
    model_cfg = {k: v for k, v in cfg.model.items()}
    model = build_model(llama_config(model_cfg), device="meta")
    n_params, n_matmul = count_parameters(model), matmul_parameters(model)
    flops = flops_per_token(n_matmul, cfg.model.num_hidden_layers, cfg.model.hidden_size, plan.seq_len)
    flops_all = flops_per_token(n_params, cfg.model.num_hidden_layers, cfg.model.hidden_size, plan.seq_len)
    steps = cfg.trainer.max_steps
    rows = [
        ("run", f"{cfg.run_name} -> {cfg.run_dir}"),
        ("model", f"{cfg.model.name}: {n_params:,} parameters"),
        ("tokens per step", f"{plan.tokens_per_step:,} = {plan.micro_batch_size} micro-batch x "
                            f"{plan.seq_len} seq x {plan.world_size} device(s) x "
                            f"{plan.accumulation} accumulation"),
        ("gradient accumulation", f"{plan.accumulation}"),
        ("max steps", f"{steps:,}"),
        ("total tokens", f"{steps * plan.tokens_per_step:,}"),
        ("FLOPs per token", f"{flops:,} (6N + 12 x layers x hidden x seq, N = {n_matmul:,} without "
                            f"the input embedding, as MFU counts; {flops_all:,} with every parameter)"),
        ("total FLOPs", f"{flops * steps * plan.tokens_per_step:.3e}"),
        ("devices", f"{plan.world_size} ({cfg.trainer.accelerator}, {cfg.trainer.num_nodes} node(s), "
                    f"strategy {cfg.trainer.strategy})"),
        ("precision", f"{cfg.trainer.precision}"),
        ("attention", f"{cfg.trainer.attn_implementation}, compile={cfg.trainer.compile}"),
        ("optimizer", f"lr {cfg.optimizer.lr}, weight decay {cfg.optimizer.weight_decay}, "
                      f"decay_all_params={cfg.optimizer.decay_all_params}"),
        ("data", f"{cfg.data.path} (packing {cfg.data.packing})"),
        ("tokenizer", f"{cfg.tokenizer.path}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
