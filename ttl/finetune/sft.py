"""Instruction tuning (supervised fine-tuning): a chat tokenizer, conversations masked to the
assistant's tokens, selection on validation loss (the run itself is
`ttl.finetune.runner.run_finetuning`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ttl.errors import TTLError
from ttl.finetune.chat import chat_collator, encode_conversations, prepare_chat_tokenizer
from ttl.finetune.checkpoint import load_causal_lm
from ttl.finetune.export import METRICS_FILE, MODEL_DIR
from ttl.finetune.lightning_modules import SFTModule
from ttl.finetune.runner import (
    Fitted,
    TaskData,
    attn_implementation,
    energy_line,
    optimizer_and_scheduler,
    run_finetuning,
    selection_line,
    validation_table,
)
from ttl.sampling import export_generation_config


class InstructionTuning:
    """Fine-tuning on conversations (task=chat)."""

    needs_test = False
    seconds_key = "fit_seconds"

    def encode(self, cfg: DictConfig, splits: dict, tokenizer, max_length: int) -> TaskData:
        added = prepare_chat_tokenizer(tokenizer, list(cfg.chat.added_tokens), cfg.chat.template)
        encoded, stats = {}, {}
        for role in ("train", "validation"):
            encoded[role], stats[role] = encode_conversations(splits[role], tokenizer,
                                                              cfg.data.messages_field, max_length)
            if not encoded[role]:
                raise TTLError(f"data: no {role} conversation has an assistant token within "
                               f"data.max_length={max_length}")
        print(f"{cfg.task.name}: {stats['train'].conversations:,} train / "
              f"{stats['validation'].conversations:,} validation conversations "
              f"({stats['train'].supervised_tokens:,} of {stats['train'].tokens:,} training tokens carry "
              f"the loss); up to {max_length} tokens; packing {cfg.data.packing}")
        if stats["train"].dropped or stats["validation"].dropped:
            print(f"dropped {stats['train'].dropped + stats['validation'].dropped} conversation(s) whose "
                  f"first answer starts after data.max_length={max_length}")
        facts = {"added_tokens": added, "vocab_size": len(tokenizer),
                 "conversations": {role: vars(stat) for role, stat in stats.items()},
                 "packing": bool(cfg.data.packing)}
        return TaskData(encoded["train"], encoded["validation"], None,
                        chat_collator(tokenizer, cfg.data.packing), facts)

    def module(self, cfg: DictConfig, checkpoint: str, tokenizer) -> SFTModule:
        model = load_causal_lm(checkpoint, attn_implementation(cfg))
        if len(tokenizer) != model.get_input_embeddings().num_embeddings:
            # New rows (input and output embeddings) start at the mean of the old ones.
            model.resize_token_embeddings(len(tokenizer))
        return SFTModule(model, *optimizer_and_scheduler(cfg), compile_model=cfg.hardware.compile)

    def score(self, fitted: Fitted, module, datamodule, data: TaskData) -> dict:
        # Restores the selected epoch's weights into `module` (and checks its validation loss).
        fitted.trainer.validate(module, datamodule=datamodule, ckpt_path=fitted.best_path, verbose=False)
        return {}

    def prepare_export(self, model, tokenizer) -> None:
        """The model card's sampling settings, as the pre-training exports carry them."""
        model.generation_config = export_generation_config(model.config, pad_token_id=tokenizer.pad_token_id)
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id

    def report(self, results: dict, run_dir: Path, tokenizer) -> str:
        """Validation per epoch and the selection."""
        return "\n".join([
            "validation (assistant tokens only):",
            validation_table(results["validation"], ["val/loss", "val/ppl"]),
            selection_line(results["selection"]),
            energy_line(results["energy"]),
            f"metrics: {run_dir / METRICS_FILE}",
            f"model: {run_dir / MODEL_DIR} (tokenizer with the chat template; {len(tokenizer):,} tokens)",
        ])


def run_sft(cfg: DictConfig) -> dict:
    """Instruction-tune `cfg.checkpoint` on conversations; print and return the results."""
    return run_finetuning(cfg, InstructionTuning())
