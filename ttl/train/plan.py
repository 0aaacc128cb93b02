"""Check a composed config and derive what follows from it (batch arithmetic, Trainer args).

Hydra has checked every key and type when it composed the config; `validate` adds what types
cannot say, naming the key at fault, and returns the typed `TrainConfig` that everything after
it reads (the plan here, and the builders in ttl.train.pretrain).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ttl.cli import first_missing, typed_settings
from ttl.errors import TTLError
from ttl.model import build_model, count_parameters, flops_per_token, llama_config, matmul_parameters
from ttl.train.parametrization import mup_of
from ttl.train.sharding import FSDP, fsdp_strategy

if TYPE_CHECKING:
    from ttl.train.config import TrainConfig, TrainerConfig


def validate(cfg: DictConfig) -> TrainConfig:
    """Every key set (none left `???`), then the settings' `validate()` checks: the typed
    settings, which the plan and the builders read."""
    from ttl.train.config import TrainConfig

    first_missing(cfg)
    return typed_settings(cfg, TrainConfig, ("module", "optimizer", "scheduler", "logger", "callbacks"))


def world_size(trainer_cfg: TrainerConfig | DictConfig) -> int:
    """Processes taking part in training: devices per node x nodes."""
    devices = trainer_cfg.devices
    if isinstance(devices, str) and "," in devices:
        per_node = len([d for d in devices.split(",") if d.strip()])
    elif OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        per_node = len(devices)
    elif devices in ("auto", -1, "-1"):
        gpu = trainer_cfg.accelerator in ("gpu", "cuda", "auto")
        per_node = max(1, torch.cuda.device_count()) if gpu else 1
    else:
        try:
            per_node = int(devices)
        except (TypeError, ValueError) as error:
            raise TTLError(f"trainer.devices={devices!r}: expected a count, a list or auto") from error
    return per_node * trainer_cfg.num_nodes


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch (in tokens) splits into micro-batches, devices and accumulation."""

    tokens_per_step: int
    seq_len: int
    micro_batch_size: int
    world_size: int
    accumulation: int


def micro_batch_size(cfg: TrainConfig) -> int:
    """hardware.micro_batch_size, or the hardware config's value for this model size
    (`hardware.micro_batch_by_model`), capped at the sequences each device gets per step."""
    value = cfg.hardware.micro_batch_size
    if value is not None:
        return value
    value = cfg.hardware.micro_batch_by_model.get(str(cfg.model.name))
    if value is None:
        raise TTLError(f"hardware.micro_batch_size is not set and hardware.micro_batch_by_model has no "
                       f"entry for model {cfg.model.name!r}; pass hardware.micro_batch_size=N")
    per_device, left = divmod(cfg.model.recipe.tokens_per_step // cfg.data.seq_len, world_size(cfg.trainer))
    return min(value, per_device) if per_device and not left else value


def plan_batch(cfg: TrainConfig) -> BatchPlan:
    """Derive gradient accumulation from tokens per step; refuse a batch that does not divide."""
    tokens, seq_len = cfg.model.recipe.tokens_per_step, cfg.data.seq_len
    micro, world = micro_batch_size(cfg), world_size(cfg.trainer)
    if tokens % seq_len:
        raise TTLError(f"model.recipe.tokens_per_step={tokens} is not a multiple of data.seq_len={seq_len}")
    sequences = tokens // seq_len
    per_pass = micro * world
    if sequences % per_pass:
        divisible = sequences // world if sequences % world == 0 else sequences
        raise TTLError(f"model.recipe.tokens_per_step={tokens} ({sequences} sequences of {seq_len}) does not "
                       f"divide into hardware.micro_batch_size={micro} x {world} device(s); choose a "
                       f"micro-batch that divides {divisible}")
    return BatchPlan(tokens, seq_len, micro, world, sequences // per_pass)


def lightning_trainer_kwargs(cfg: TrainConfig, plan: BatchPlan) -> dict[str, Any]:
    """Lightning Trainer arguments: trainer.*, plus the accumulation and the validation interval
    that follow from the recipe (the schema has no keys for them: they have one home there)."""
    kwargs = asdict(cfg.trainer)
    kwargs["accumulate_grad_batches"] = plan.accumulation
    if kwargs["strategy"] == FSDP:
        # ttl's FSDP is FSDP2 through Lightning's ModelParallelStrategy (see ttl.train.sharding).
        kwargs["strategy"] = fsdp_strategy(plan.world_size)
    # Lightning counts validation intervals in micro-batches; the config counts steps.
    kwargs["val_check_interval"] = cfg.model.recipe.eval_every_n_steps * plan.accumulation
    return kwargs


def precision_note(precision: str, accelerator: str, cpu_has_bf16: bool | None = None) -> str:
    """A warning for bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX), else "": torch
    emulates its matmuls there about 150x slower than fp32 (an AVX2 EPYC: 1 against 148 GFLOP/s)."""
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if not (on_cpu and str(precision).startswith("bf16")):
        return ""
    if cpu_has_bf16 is None:
        cpu_has_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if cpu_has_bf16:
        return ""
    capability = torch.backends.cpu.get_cpu_capability()
    return (f" (this CPU has no native bf16, only {capability}: bf16 matmuls run about 100x slower "
            "than fp32 here; trainer.precision=32 trains faster)")


def group_lines(cfg: TrainConfig, model: torch.nn.Module) -> str:
    """Each optimizer group's peak learning rate and weight decay, as the run will build them
    (over the meta-device model); an unnamed group is called by its decay."""
    optimizer = instantiate(cfg.optimizer)(model, mup=mup_of(cfg.model))
    return "; ".join(f"{g.get('group') or ('decayed' if g['weight_decay'] else 'exempt')} "
                     f"lr {g['lr']:.4g} wd {g['weight_decay']:.4g}" for g in optimizer.param_groups)


def describe(cfg: TrainConfig, plan: BatchPlan) -> str:
    """Parameters, batch arithmetic, steps, tokens, FLOPs, devices and precision, one per line."""
    model = build_model(llama_config(asdict(cfg.model)), device="meta")
    n_params, n_matmul = count_parameters(model), matmul_parameters(model)
    mup = mup_of(cfg.model)
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
        ("precision", f"{cfg.trainer.precision}"
                      + precision_note(cfg.trainer.precision, cfg.trainer.accelerator)),
        ("attention", f"{cfg.hardware.attn_implementation}, compile={cfg.hardware.compile}"),
        ("optimizer", f"{str(cfg.optimizer._target_).rsplit('.', 1)[-1]}: lr {cfg.optimizer.lr}, "
                      f"weight decay {cfg.optimizer.weight_decay}"
                      + (f", decay_all_params={cfg.optimizer.decay_all_params}"
                         if "decay_all_params" in cfg.optimizer else "")),
        ("parametrization", "standard" if mup is None else
         f"mup: base width {cfg.model.base_width}, width multiplier {mup.width:g} "
         f"(hidden {cfg.model.hidden_size}), input multiplier {mup.input:g}, output multiplier "
         f"{mup.output:g}; ttl.train.parametrization states each group's rule"),
        ("parameter groups", group_lines(cfg, model)),
        ("data", f"{cfg.data.path} (packing {cfg.data.packing})"),
        ("tokenizer", f"{cfg.tokenizer.path}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
