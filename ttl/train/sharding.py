"""FSDP2 sharding of the Llama model (`trainer=fsdp`, docs/recipes.md), and gathering it back
whole for exports and samples. Unlike Lightning's `strategy="fsdp"` (FSDP1), it also runs on CPU
with gloo, which is how the tests exercise it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import LlamaForCausalLM

# The ttl name of the strategy in trainer configs (Lightning's own "fsdp" is FSDP1).
FSDP = "fsdp"


def fsdp_strategy(world_size: int) -> Any:
    """Lightning's `ModelParallelStrategy` set up for FSDP2 over `world_size` ranks, consolidating
    checkpoints into one `.ckpt` file on rank 0 like every other strategy (resume works unchanged)."""
    from lightning.pytorch.strategies import ModelParallelStrategy

    return ModelParallelStrategy(data_parallel_size=world_size, tensor_parallel_size=1,
                                 save_distributed_checkpoint=False)


def is_sharded(model: nn.Module) -> bool:
    """True when `model`'s parameters are DTensors (sharded by FSDP2)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def shard_model(model: LlamaForCausalLM, mesh, compile_layers: bool = False,
                compile_mode: str | None = None) -> None:
    """Shard `model` in place over `mesh`: one FSDP unit per decoder layer (its all-gather
    overlaps the previous layer's compute), then the root (embeddings, final norm, head). With
    `compile_layers`, each layer is compiled in place before it is wrapped (the order PyTorch
    recommends for FSDP2), so parameter names stay plain."""
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        if compile_layers:
            layer.compile(mode=compile_mode)
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)


def unsharded_copy(model: LlamaForCausalLM) -> LlamaForCausalLM | None:
    """A plain `LlamaForCausalLM` on CPU holding the full weights of a sharded model. Collective:
    every rank calls it; the others get None. Built on the meta device, taking the gathered
    tensors as they are, it costs one model's memory on rank 0 and nothing elsewhere."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not state:
        return None
    with torch.device("meta"):
        plain = LlamaForCausalLM(model.config)
    plain.load_state_dict(state, assign=True, strict=False)
    # Tied embeddings share one tensor: the gathered dict may carry only one name of the pair.
    plain.tie_weights()
    # Buffers are not sharded (each rank holds them whole); the non-persistent ones, such as
    # the rotary inverse frequencies, are not in the state dict at all.
    sources = dict(model.named_buffers())
    for name, _ in list(plain.named_buffers()):
        owner, _, leaf = name.rpartition(".")
        plain.get_submodule(owner).register_buffer(
            leaf, sources[name].detach().to("cpu", copy=True),
            persistent=leaf not in plain.get_submodule(owner)._non_persistent_buffers_set)
    missing = [name for name, p in plain.named_parameters() if p.is_meta]
    if missing:
        raise RuntimeError(f"gathered state dict lacks parameters: {missing[:5]}")
    return plain.eval()


def number_params_in_model_order(optimizer_state: dict, optimizer: torch.optim.Optimizer,
                                 module: nn.Module) -> dict:
    """`optimizer.state_dict()` renumbered so that parameter i is `module.parameters()`'s i-th.
    PyTorch numbers parameters in param-group order; FSDP checkpoints number them in model
    order, and loading under FSDP assumes it. Saving every checkpoint so lets a run move between
    DDP and FSDP on resume (plain `Optimizer.load_state_dict` loads both numberings alike)."""
    position = {id(p): i for i, p in enumerate(module.parameters())}
    in_groups = [p for group in optimizer.param_groups for p in group["params"]]
    renumber = {i: position[id(p)] for i, p in enumerate(in_groups)}
    return {
        "state": {renumber[i]: value for i, value in optimizer_state["state"].items()},
        "param_groups": [{**group, "params": [renumber[i] for i in group["params"]]}
                         for group in optimizer_state["param_groups"]],
    }


def describe_sharding(model: nn.Module) -> str:
    """One line: how many of the model's parameters this rank holds."""
    from torch.distributed.tensor import DTensor

    total = sum(p.numel() for p in model.parameters())
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in model.parameters())
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    return f"fsdp: rank {rank} holds {local:,} of {total:,} parameters ({local / total:.0%})"
