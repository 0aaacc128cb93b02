"""Instruction tuning (supervised fine-tuning) end to end: chat tokenizer, masked data, fit, export."""

from __future__ import annotations

import time

from omegaconf import DictConfig
from transformers import GenerationConfig

from ttl.errors import TTLError
from ttl.finetune.chat import chat_collator, encode_conversations, prepare_chat_tokenizer
from ttl.finetune.checkpoint import effective_max_length, load_causal_lm, load_tokenizer, resolve_checkpoint
from ttl.finetune.data import ExamplesDataModule
from ttl.finetune.export import METRICS_FILE, MODEL_DIR, save_run_results
from ttl.finetune.modules import SFTModule
from ttl.finetune.runner import (
    attn_implementation,
    drop_checkpoint,
    energy_line,
    fit,
    optimizer_and_scheduler,
    run_directory,
    selection_line,
    set_hardware_flags,
    validation_table,
)
from ttl.finetune.settings import batch_split
from ttl.finetune.sources import load_splits
from ttl.loggers import finish_wandb
from ttl.sampling import GENERATION_DEFAULTS


def run_sft(cfg: DictConfig) -> dict:
    """Instruction-tune `cfg.checkpoint` on conversations; print and return the results."""
    checkpoint = resolve_checkpoint(str(cfg.checkpoint))
    tokenizer = load_tokenizer(checkpoint, cfg.tokenizer)
    micro, accumulation = batch_split(cfg)
    splits = load_splits(cfg.data, cfg.seed, need_test=False)
    added = prepare_chat_tokenizer(tokenizer, list(cfg.chat.added_tokens), cfg.chat.template)
    max_length = effective_max_length(cfg.data.max_length, checkpoint)
    encoded, stats = {}, {}
    for role in ("train", "validation"):
        encoded[role], stats[role] = encode_conversations(splits[role], tokenizer, cfg.data.messages_field,
                                                          max_length)
        if not encoded[role]:
            raise TTLError(f"data: no {role} conversation has an assistant token within "
                           f"data.max_length={max_length}")
    print(f"{cfg.task.name}: {stats['train'].conversations:,} train / {stats['validation'].conversations:,} "
          f"validation conversations ({stats['train'].supervised_tokens:,} of {stats['train'].tokens:,} "
          f"training tokens carry the loss); up to {max_length} tokens; packing {cfg.data.packing}")
    if stats["train"].dropped or stats["validation"].dropped:
        print(f"dropped {stats['train'].dropped + stats['validation'].dropped} conversation(s) whose "
              f"first answer starts after data.max_length={max_length}")

    set_hardware_flags(cfg)
    model = load_causal_lm(checkpoint, attn_implementation(cfg))
    if len(tokenizer) != model.get_input_embeddings().num_embeddings:
        # New rows (input and output embeddings) start at the mean of the old ones.
        model.resize_token_embeddings(len(tokenizer))
    module = SFTModule(model, *optimizer_and_scheduler(cfg), compile_model=cfg.trainer.compile)
    datamodule = ExamplesDataModule(encoded["train"], encoded["validation"], None,
                                    chat_collator(tokenizer, cfg.data.packing), micro, cfg.data.num_workers)
    with run_directory(cfg) as run_dir:
        start = time.monotonic()
        try:
            fitted = fit(cfg, module, datamodule, accumulation, run_dir)
            # Restores the selected epoch's weights into `module` (and checks its validation loss).
            fitted.trainer.validate(module, datamodule=datamodule, ckpt_path=fitted.best_path, verbose=False)
        finally:
            finish_wandb()
        if not fitted.trainer.is_global_zero:
            return {}
        results = {
            "task": cfg.task.name,
            "checkpoint": checkpoint,
            "added_tokens": added,
            "vocab_size": len(tokenizer),
            "conversations": {role: vars(stat) for role, stat in stats.items()},
            "max_length": max_length,
            "packing": bool(cfg.data.packing),
            "selection": {"monitor": cfg.selection.monitor, "mode": cfg.selection.mode, **fitted.selected},
            "validation": module.history,
            "fit_seconds": round(time.monotonic() - start, 1),
            "energy": fitted.energy(),
            "run_dir": str(run_dir),
            "model_dir": str(run_dir / MODEL_DIR),
        }
        model = module.model
        # The model card's sampling settings, as the pre-training exports carry them.
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, **GENERATION_DEFAULTS,
        )
        save_run_results(model, tokenizer, run_dir, results)
        drop_checkpoint(cfg, fitted)
    selected = results["selection"]
    print("\n".join([
        "validation (assistant tokens only):",
        validation_table(results["validation"], ["val/loss", "val/ppl"]),
        selection_line(selected),
        energy_line(results["energy"]),
        f"metrics: {run_dir / METRICS_FILE}",
        f"model: {run_dir / MODEL_DIR} (tokenizer with the chat template; {len(tokenizer):,} tokens)",
    ]))
    return results
