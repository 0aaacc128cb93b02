"""The fine-tuning run, one skeleton for every kind of task (`Classification`,
`InstructionTuning` say only what differs). The epoch kept is chosen by Lightning's
`ModelCheckpoint` on `selection.monitor` (validation only); its weights are restored into the
module before scoring and exporting.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from ttl.checkpoints import (
    effective_max_length,
    load_causal_lm,
    load_classifier,
    resolve_checkpoint,
    tokenizer_for,
)
from ttl.errors import TTLError
from ttl.finetune.chat import chat_collator, encode_conversations, prepare_chat_tokenizer
from ttl.finetune.config import FinetuneConfig, batch_split, validate
from ttl.finetune.data import encode_split, load_splits
from ttl.finetune.modules import ClassifierModule, FinetuneModule, SFTModule, majority_baseline
from ttl.generate import export_generation_config
from ttl.model import resolve_attn_implementation
from ttl.rundir import checkpoint_dir, is_primary_process, owned_run_dir, save_config, write_dir, write_json
from ttl.train.callbacks import build_callbacks
from ttl.train.callbacks.emissions import EmissionsMonitor
from ttl.train.loggers import build_loggers, finish_wandb
from ttl.train.sweep import in_multirun, place_sweep_job

METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


def attn_implementation(cfg: FinetuneConfig) -> str:
    """The attention kernel for this hardware config (sdpa, or flash-attention 2 when asked and installed)."""
    return resolve_attn_implementation(cfg.hardware.attn_implementation, cfg.trainer.accelerator)


def optimizer_and_scheduler(cfg: FinetuneConfig) -> tuple:
    """The optimizer and scheduler partials of the config."""
    return instantiate(cfg.optimizer), instantiate(cfg.scheduler) if cfg.scheduler else None


def fit(cfg: FinetuneConfig, module: FinetuneModule, loaders: dict[str, DataLoader], accumulation: int,
        run_dir: Path, hparams: dict) -> tuple[pl.Trainer, str, EmissionsMonitor | None]:
    """Train per `cfg`; returns the trainer, the weights-only .ckpt of the best validation
    (`selection.*`) and the emissions monitor (None without one). The caller closes the W&B run
    (`finish_wandb`) after its last logging."""
    # The step in the file name identifies the validation entry in module.history.
    selector = ModelCheckpoint(dirpath=checkpoint_dir(run_dir), filename="best-epoch{epoch}-step{step}",
                               auto_insert_metric_name=False, monitor=cfg.selection.monitor,
                               mode=cfg.selection.mode, save_top_k=1, save_weights_only=True,
                               enable_version_counter=False)
    callbacks = build_callbacks(cfg.callbacks, run_dir=str(run_dir))
    trainer = pl.Trainer(
        **asdict(cfg.trainer) | {"accumulate_grad_batches": accumulation},
        callbacks=[selector, *callbacks.values()],
        logger=build_loggers(cfg.logger, run_dir, hparams) or False,
        default_root_dir=str(run_dir),
    )
    trainer.fit(module, loaders["train"], loaders["validation"])
    if not selector.best_model_path:
        raise TTLError(f"selection.monitor={cfg.selection.monitor}: no validation produced it, so no "
                       "epoch could be selected (is trainer.limit_val_batches 0?)")
    return trainer, selector.best_model_path, callbacks.get("emissions")


def energy(monitor: EmissionsMonitor | None) -> dict:
    """kWh and kg CO2eq of the fit (None when the emissions callback is off or absent)."""
    if monitor is None or not monitor.enabled:
        return {"kwh": None, "kg_co2eq": None}
    kwh, kg = monitor.totals()
    return {"kwh": float(f"{kwh:.4g}"), "kg_co2eq": float(f"{kg:.4g}")}


def summary(results: dict, run_dir: Path, title: str, keys: list[str], scores: list[str],
            model_note: str = "") -> str:
    """The end-of-run report: each validation's `keys`, the selection, `scores`, energy, outputs."""
    selected, spent = results["selection"], results["energy"]
    monitor = selected["monitor"]
    return "\n".join([
        f"{title}:",
        *(f"  epoch {h['epoch']} (step {h['step']}): " + "  ".join(f"{k} {h[k]:.4f}" for k in keys)
          for h in results["validation"]),
        f"selected: epoch {selected['epoch']} (step {selected['step']}) by {monitor} = "
        f"{selected[monitor]:.4f}",
        *scores,
        "energy: not tracked (callbacks.emissions.enabled=false)" if spent["kwh"] is None else
        f"energy: {spent['kwh']:.4g} kWh, {spent['kg_co2eq']:.4g} kg CO2eq (codecarbon estimate)",
        f"metrics: {run_dir / METRICS_FILE}",
        f"model: {run_dir / MODEL_DIR}{model_note}",
    ])


@dataclass
class EncodedTask:
    """A task's encoded examples per split, how to batch them, and facts about them for the results."""

    examples: dict[str, list]
    collator: Callable
    facts: dict


def run_finetuning(cfg: FinetuneConfig, kind: Classification | InstructionTuning,
                   composed: DictConfig) -> dict:
    """Fine-tune `cfg.checkpoint` on `cfg.task` as `kind` says; print and return the results
    (also in the run's metrics.json and beside the exported model). `composed` (the config as
    Hydra composed it) is kept only for the run's config.yaml and the loggers."""
    checkpoint = resolve_checkpoint(cfg.checkpoint)
    tokenizer = tokenizer_for(checkpoint, cfg.tokenizer)
    micro, accumulation = batch_split(cfg)
    splits = load_splits(cfg.data, cfg.seed, need_test=kind.needs_test)
    max_length = effective_max_length(cfg.data.max_length, checkpoint)
    data = kind.encode(cfg, splits, tokenizer, max_length)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.hardware.tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    module = kind.module(cfg, checkpoint, tokenizer)
    # The examples fit in memory (thousands of rows); Lightning adds a distributed sampler under DDP.
    loaders = {role: DataLoader(examples, batch_size=micro, shuffle=role == "train", collate_fn=data.collator,
                                num_workers=cfg.data.num_workers) for role, examples in data.examples.items()}
    # Entered only once the inputs are checked, so a bad command leaves no files behind. A re-run
    # replaces the earlier run's config, metrics and export (fine-tuning does not resume).
    with owned_run_dir(cfg.run_dir) as run_dir:
        if is_primary_process():
            save_config(composed, run_dir, replace=True)
        start = time.monotonic()
        try:
            hparams = OmegaConf.to_container(composed, resolve=True)
            trainer, best, monitor = fit(cfg, module, loaders, accumulation, run_dir, hparams)
            scores = kind.score(trainer, best, module, loaders, data)
        finally:
            finish_wandb()
        if not trainer.is_global_zero:
            return {}
        step = int(re.search(r"step(\d+)", Path(best).name).group(1))
        selected = next(entry for entry in module.history if entry["step"] == step)
        results = {
            "task": cfg.task.name,
            "checkpoint": checkpoint,
            **data.facts,
            "max_length": max_length,
            "selection": {"monitor": cfg.selection.monitor, "mode": cfg.selection.mode, **selected},
            "validation": module.history,
            **scores,
            kind.seconds_key: round(time.monotonic() - start, 1),
            "energy": energy(monitor),
            "run_dir": str(run_dir),
            "model_dir": str(run_dir / MODEL_DIR),
        }

        def fill(tmp: Path) -> None:  # the export, with metrics.json: whole or not at all
            module.model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            (tmp / METRICS_FILE).write_text(json.dumps(results, indent=2, ensure_ascii=False))

        write_dir(run_dir / MODEL_DIR, fill)
        write_json(run_dir / METRICS_FILE, results)
        if not cfg.selection.keep_checkpoint:  # the export holds the same weights
            Path(best).unlink(missing_ok=True)
            if not any(Path(best).parent.iterdir()):
                Path(best).parent.rmdir()
    print(kind.report(results, run_dir))
    return results


class Classification:
    """Fine-tuning for a task with labels (hatebr, assin2, faquad_nli, imdb, agnews)."""

    needs_test = True
    seconds_key = "fit_and_test_seconds"

    def encode(self, cfg: FinetuneConfig, splits: dict, tokenizer, max_length: int) -> EncodedTask:
        """Token ids and label id of every example of every split (printing their counts)."""
        labels = cfg.task.labels
        data = cfg.data
        encoded = {role: encode_split(split, tokenizer, data.template, data.label_field, labels, max_length)
                   for role, split in splits.items()}
        sizes = {role: len(examples) for role, examples in encoded.items()}
        print(f"{cfg.task.name}: {sizes['train']:,} train / {sizes['validation']:,} validation / "
              f"{sizes['test']:,} test examples; labels {', '.join(labels)}; "
              f"inputs up to {max_length} tokens")
        return EncodedTask(encoded, DataCollatorWithPadding(tokenizer), {"labels": labels, "examples": sizes})

    def module(self, cfg: FinetuneConfig, checkpoint: str, tokenizer) -> ClassifierModule:
        """The checkpoint with a new classification head."""
        labels = cfg.task.labels
        model = load_classifier(checkpoint, labels, tokenizer.pad_token_id, attn_implementation(cfg))
        return ClassifierModule(model, *optimizer_and_scheduler(cfg), num_labels=len(labels),
                                compile_model=cfg.hardware.compile)

    def score(self, trainer: pl.Trainer, best: str, module, loaders: dict, data: EncodedTask) -> dict:
        """Test scores of the selected epoch (its weights restored into `module`), and the baseline's."""
        [tested] = trainer.test(module, loaders["test"], ckpt_path=best, verbose=False)
        labels, examples = data.facts["labels"], data.examples
        baseline = majority_baseline([e["labels"] for e in examples["train"]],
                                     [e["labels"] for e in examples["test"]], len(labels))
        test = {"accuracy": round(tested["test/acc"], 6), "macro_f1": round(tested["test/macro_f1"], 6)}
        return {"test": test, "majority_baseline": {**baseline, "label_name": labels[baseline["label"]]}}

    def report(self, results: dict, run_dir: Path) -> str:
        """Validation per epoch, the selection, test beside the baseline."""
        test, base = results["test"], results["majority_baseline"]
        return summary(results, run_dir, "validation", ["val/acc", "val/macro_f1", "val/loss"], [
            f"test ({results['examples']['test']:,} examples): accuracy {test['accuracy']:.4f}  "
            f"macro-F1 {test['macro_f1']:.4f}",
            f"majority baseline (always {base['label_name']}, the training majority): "
            f"accuracy {base['accuracy']:.4f}  macro-F1 {base['macro_f1']:.4f}",
        ])


class InstructionTuning:
    """Fine-tuning on conversations (task=chat)."""

    needs_test = False
    seconds_key = "fit_seconds"

    def encode(self, cfg: FinetuneConfig, splits: dict, tokenizer, max_length: int) -> EncodedTask:
        """The chat tokenizer, and the train and validation conversations (printing what they hold)."""
        added = prepare_chat_tokenizer(tokenizer, cfg.chat.added_tokens, cfg.chat.template)
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
        return EncodedTask(encoded, chat_collator(tokenizer, cfg.data.packing), facts)

    def module(self, cfg: FinetuneConfig, checkpoint: str, tokenizer) -> SFTModule:
        """The causal LM, its embeddings resized to the tokenizer, with the export's sampling settings."""
        model = load_causal_lm(checkpoint, attn_implementation(cfg))
        if len(tokenizer) != model.get_input_embeddings().num_embeddings:
            # New rows (input and output embeddings) start at the mean of the old ones.
            model.resize_token_embeddings(len(tokenizer))
        # The model card's sampling settings, as the pre-training exports carry them.
        model.generation_config = export_generation_config(model.config, pad_token_id=tokenizer.pad_token_id)
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        return SFTModule(model, *optimizer_and_scheduler(cfg), compile_model=cfg.hardware.compile)

    def score(self, trainer: pl.Trainer, best: str, module, loaders: dict, data: EncodedTask) -> dict:
        """Restore the selected epoch's weights into `module` (checking its validation loss)."""
        trainer.validate(module, loaders["validation"], ckpt_path=best, verbose=False)
        return {}

    def report(self, results: dict, run_dir: Path) -> str:
        """Validation per epoch and the selection."""
        return summary(results, run_dir, "validation (assistant tokens only)", ["val/loss", "val/ppl"], [],
                       f" (tokenizer with the chat template; {results['vocab_size']:,} tokens)")


TASK_KINDS = {"classification": Classification, "sft": InstructionTuning}


def finetune(cfg: DictConfig) -> dict:
    """Validate the config and fine-tune per its task kind; returns the run's results."""
    if in_multirun():  # each job of `-m task=hatebr,assin2 recipe.lr=...` gets its own run dir
        place_sweep_job(cfg)
    settings = validate(cfg)
    return run_finetuning(settings, TASK_KINDS[settings.task.kind](), cfg)
