"""The fine-tuning run, one skeleton for every kind of task: checkpoint and tokenizer, data,
module, fit with selection on validation, scoring, results, export, report.

A kind of task (`Classification`, `InstructionTuning`) says only what differs: how examples
become tokens, which module trains, how the kept weights are scored, what the report says. The
epoch kept is chosen by Lightning's `ModelCheckpoint` on `selection.monitor` (validation only);
its weights are restored into the module before scoring and exporting. The run's outputs are
the kept model as a Hugging Face directory (`run_dir/model/`, with its metrics.json) and
`run_dir/metrics.json`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from transformers import DataCollatorWithPadding

from ttl.checkpoints import (
    effective_max_length,
    load_causal_lm,
    load_classifier,
    resolve_checkpoint,
    tokenizer_for,
)
from ttl.cli import build
from ttl.errors import TTLError
from ttl.finetune.chat import chat_collator, encode_conversations, prepare_chat_tokenizer
from ttl.finetune.config import batch_split, trainer_kwargs, validate
from ttl.finetune.data import ExamplesDataModule, encode_split, load_splits
from ttl.finetune.modules import ClassifierModule, FinetuneModule, SFTModule, majority_baseline
from ttl.generate import export_generation_config
from ttl.model import resolve_attn_implementation
from ttl.rundir import checkpoint_dir, is_primary_process, owned_run_dir, save_config, write_dir, write_json
from ttl.train.callbacks.emissions import EmissionsMonitor
from ttl.train.loggers import build_loggers, finish_wandb
from ttl.train.sweep import in_multirun, place_sweep_job

METRICS_FILE = "metrics.json"
MODEL_DIR = "model"


def save_pretrained_atomically(model, tokenizer, final: Path, extra_json: dict[str, dict]) -> Path:
    """`save_pretrained` of model and tokenizer plus JSON files into `final`, whole or not at all."""

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for name, content in extra_json.items():
            (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False))

    return write_dir(final, fill)


def save_run_results(model, tokenizer, run_dir: Path, results: dict) -> None:
    """A fine-tuning run's outputs: `run_dir/model/` (with its metrics.json) and `run_dir/metrics.json`."""
    save_pretrained_atomically(model, tokenizer, run_dir / MODEL_DIR, {METRICS_FILE: results})
    write_json(run_dir / METRICS_FILE, results)


def attn_implementation(cfg: DictConfig) -> str:
    """The attention kernel for this hardware config (sdpa, or flash-attention 2 when asked and installed)."""
    return resolve_attn_implementation(cfg.hardware.attn_implementation, cfg.trainer.accelerator)


def set_hardware_flags(cfg: DictConfig) -> None:
    """Seed everything and switch TF32 on where the hardware config asks for it."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.hardware.get("tf32") and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def optimizer_and_scheduler(cfg: DictConfig) -> tuple:
    """The optimizer and scheduler partials of the config."""
    return instantiate(cfg.optimizer), instantiate(cfg.scheduler) if cfg.get("scheduler") else None


@contextmanager
def run_directory(cfg: DictConfig) -> Iterator[Path]:
    """`run_dir`, locked against a second run on it, holding this run's resolved config.yaml.

    Entered only once the inputs are checked, so a bad command leaves no files behind. A
    re-run replaces the earlier run's config, metrics and export (fine-tuning does not resume).
    """
    with owned_run_dir(cfg.run_dir) as run_dir:
        if is_primary_process():
            save_config(cfg, run_dir, replace=True)
        yield run_dir


@dataclass
class Fitted:
    """A finished fit: the trainer, the selected validation entry and its checkpoint."""

    trainer: pl.Trainer
    selected: dict
    best_path: str

    def energy(self) -> dict:
        """kWh and kg CO2eq of the fit (None when the emissions callback is off or absent)."""
        monitor = next((c for c in self.trainer.callbacks if isinstance(c, EmissionsMonitor)), None)
        if monitor is None or not monitor.enabled:
            return {"kwh": None, "kg_co2eq": None}
        kwh, kg = monitor.totals()
        return {"kwh": float(f"{kwh:.4g}"), "kg_co2eq": float(f"{kg:.4g}")}


def _selected_entry(history: list[dict], best_path: str) -> dict:
    step = int(re.search(r"step(\d+)", Path(best_path).name).group(1))
    return next(entry for entry in history if entry["step"] == step)


def fit(cfg: DictConfig, module: FinetuneModule, datamodule: pl.LightningDataModule,
        accumulation: int, run_dir: Path) -> Fitted:
    """Train per `cfg`, keeping the best validation epoch (`selection.*`) as a weights-only .ckpt.

    The caller closes the W&B run (`ttl.train.loggers.finish_wandb`) after its last logging.
    """
    selector = ModelCheckpoint(
        dirpath=checkpoint_dir(run_dir),
        # The step identifies the validation entry in module.history.
        filename="best-epoch{epoch}-step{step}",
        auto_insert_metric_name=False,
        monitor=cfg.selection.monitor,
        mode=cfg.selection.mode,
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )
    callbacks = [build(c, run_dir=str(run_dir)) for c in (cfg.callbacks or {}).values() if c is not None]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    trainer = pl.Trainer(
        **trainer_kwargs(cfg, accumulation),
        callbacks=[selector, *callbacks],
        logger=build_loggers(cfg.logger, run_dir, resolved) or False,
        default_root_dir=str(run_dir),
    )
    trainer.fit(module, datamodule=datamodule)
    best = selector.best_model_path
    if not best:
        raise TTLError(f"selection.monitor={cfg.selection.monitor}: no validation produced it, so no "
                       "epoch could be selected (is trainer.limit_val_batches 0?)")
    return Fitted(trainer, _selected_entry(module.history, best), best)


def drop_checkpoint(cfg: DictConfig, fitted: Fitted) -> None:
    """Remove the selection .ckpt once the Hugging Face export holds the same weights."""
    if not cfg.selection.keep_checkpoint:
        best = Path(fitted.best_path)
        best.unlink(missing_ok=True)
        if not any(best.parent.iterdir()):
            best.parent.rmdir()


def validation_table(history: list[dict], keys: list[str]) -> str:
    """One line per validation: epoch, step and the given metrics."""
    return "\n".join(
        f"  epoch {h['epoch']} (step {h['step']}): " + "  ".join(f"{k} {h[k]:.4f}" for k in keys)
        for h in history
    )


def energy_line(energy: dict) -> str:
    """The fit's energy and emissions (codecarbon's estimate), or that they were not tracked."""
    if energy["kwh"] is None:
        return "energy: not tracked (callbacks.emissions.enabled=false)"
    return f"energy: {energy['kwh']:.4g} kWh, {energy['kg_co2eq']:.4g} kg CO2eq (codecarbon estimate)"


def selection_line(selected: dict) -> str:
    """Which validation was kept, and its value of the monitored metric."""
    monitor = selected["monitor"]
    where = f"epoch {selected['epoch']} (step {selected['step']})"
    return f"selected: {where} by {monitor} = {selected[monitor]:.4f}"


@dataclass
class EncodedTask:
    """A task's encoded examples, how to batch them, and facts about them for the results."""

    train: list
    validation: list
    test: list | None
    collator: Any
    facts: dict = field(default_factory=dict)


class TaskKind(Protocol):
    """What differs between kinds of fine-tuning; `run_finetuning` does the rest."""

    needs_test: bool
    seconds_key: str

    def encode(self, cfg: DictConfig, splits: dict, tokenizer, max_length: int) -> EncodedTask:
        """Encode the splits (printing a line about them)."""

    def module(self, cfg: DictConfig, checkpoint: str, tokenizer) -> FinetuneModule:
        """The LightningModule around the loaded checkpoint."""

    def score(self, fitted: Fitted, module: FinetuneModule, datamodule, data: EncodedTask) -> dict:
        """Score the kept weights (restored into `module`); results entries."""

    def prepare_export(self, model, tokenizer) -> None:
        """Last touches to the model before it is saved."""

    def report(self, results: dict, run_dir: Path, tokenizer) -> str:
        """The end-of-run summary."""


def run_finetuning(cfg: DictConfig, kind: TaskKind) -> dict:
    """Fine-tune `cfg.checkpoint` on `cfg.task` as `kind` says; print and return the results
    (also in the run's metrics.json and beside the exported model)."""
    checkpoint = resolve_checkpoint(str(cfg.checkpoint))
    tokenizer = tokenizer_for(checkpoint, cfg.tokenizer)
    micro, accumulation = batch_split(cfg)
    splits = load_splits(cfg.data, cfg.seed, need_test=kind.needs_test)
    max_length = effective_max_length(cfg.data.max_length, checkpoint)
    data = kind.encode(cfg, splits, tokenizer, max_length)
    set_hardware_flags(cfg)
    module = kind.module(cfg, checkpoint, tokenizer)
    datamodule = ExamplesDataModule(data.train, data.validation, data.test, data.collator, micro,
                                    cfg.data.num_workers)
    with run_directory(cfg) as run_dir:
        start = time.monotonic()
        try:
            fitted = fit(cfg, module, datamodule, accumulation, run_dir)
            scores = kind.score(fitted, module, datamodule, data)
        finally:
            finish_wandb()
        if not fitted.trainer.is_global_zero:
            return {}
        results = {
            "task": cfg.task.name,
            "checkpoint": checkpoint,
            **data.facts,
            "max_length": max_length,
            "selection": {"monitor": cfg.selection.monitor, "mode": cfg.selection.mode, **fitted.selected},
            "validation": module.history,
            **scores,
            kind.seconds_key: round(time.monotonic() - start, 1),
            "energy": fitted.energy(),
            "run_dir": str(run_dir),
            "model_dir": str(run_dir / MODEL_DIR),
        }
        kind.prepare_export(module.model, tokenizer)
        save_run_results(module.model, tokenizer, run_dir, results)
        drop_checkpoint(cfg, fitted)
    print(kind.report(results, run_dir, tokenizer))
    return results


class Classification:
    """Fine-tuning for a task with labels (hatebr, assin2, faquad_nli, imdb, agnews)."""

    needs_test = True
    seconds_key = "fit_and_test_seconds"

    def encode(self, cfg: DictConfig, splits: dict, tokenizer, max_length: int) -> EncodedTask:
        labels = [str(label) for label in cfg.task.labels]
        data = cfg.data
        encoded = {role: encode_split(split, tokenizer, data.template, data.label_field, labels, max_length)
                   for role, split in splits.items()}
        sizes = {role: len(examples) for role, examples in encoded.items()}
        print(f"{cfg.task.name}: {sizes['train']:,} train / {sizes['validation']:,} validation / "
              f"{sizes['test']:,} test examples; labels {', '.join(labels)}; "
              f"inputs up to {max_length} tokens")
        return EncodedTask(encoded["train"], encoded["validation"], encoded["test"],
                        DataCollatorWithPadding(tokenizer), {"labels": labels, "examples": sizes})

    def module(self, cfg: DictConfig, checkpoint: str, tokenizer) -> ClassifierModule:
        labels = [str(label) for label in cfg.task.labels]
        model = load_classifier(checkpoint, labels, tokenizer.pad_token_id, attn_implementation(cfg))
        return ClassifierModule(model, *optimizer_and_scheduler(cfg), num_labels=len(labels),
                                compile_model=cfg.hardware.compile)

    def score(self, fitted: Fitted, module, datamodule, data: EncodedTask) -> dict:
        # Restores the selected epoch's weights into `module` before scoring it on test.
        [tested] = fitted.trainer.test(module, datamodule=datamodule, ckpt_path=fitted.best_path,
                                       verbose=False)
        labels = data.facts["labels"]
        baseline = majority_baseline([e["labels"] for e in data.train], [e["labels"] for e in data.test],
                                     len(labels))
        test = {"accuracy": round(tested["test/acc"], 6), "macro_f1": round(tested["test/macro_f1"], 6)}
        return {"test": test, "majority_baseline": {**baseline, "label_name": labels[baseline["label"]]}}

    def prepare_export(self, model, tokenizer) -> None:
        """Nothing to add: the classifier head and its labels are in the config."""

    def report(self, results: dict, run_dir: Path, tokenizer) -> str:
        """Validation per epoch, the selection, test beside the baseline."""
        selected, test, base = results["selection"], results["test"], results["majority_baseline"]
        return "\n".join([
            "validation:",
            validation_table(results["validation"], ["val/acc", "val/macro_f1", "val/loss"]),
            selection_line(selected),
            f"test ({results['examples']['test']:,} examples): accuracy {test['accuracy']:.4f}  "
            f"macro-F1 {test['macro_f1']:.4f}",
            f"majority baseline (always {base['label_name']}, the training majority): "
            f"accuracy {base['accuracy']:.4f}  macro-F1 {base['macro_f1']:.4f}",
            energy_line(results["energy"]),
            f"metrics: {run_dir / METRICS_FILE}",
            f"model: {run_dir / MODEL_DIR}",
        ])


class InstructionTuning:
    """Fine-tuning on conversations (task=chat)."""

    needs_test = False
    seconds_key = "fit_seconds"

    def encode(self, cfg: DictConfig, splits: dict, tokenizer, max_length: int) -> EncodedTask:
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
        return EncodedTask(encoded["train"], encoded["validation"], None,
                        chat_collator(tokenizer, cfg.data.packing), facts)

    def module(self, cfg: DictConfig, checkpoint: str, tokenizer) -> SFTModule:
        model = load_causal_lm(checkpoint, attn_implementation(cfg))
        if len(tokenizer) != model.get_input_embeddings().num_embeddings:
            # New rows (input and output embeddings) start at the mean of the old ones.
            model.resize_token_embeddings(len(tokenizer))
        return SFTModule(model, *optimizer_and_scheduler(cfg), compile_model=cfg.hardware.compile)

    def score(self, fitted: Fitted, module, datamodule, data: EncodedTask) -> dict:
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


TASK_KINDS = {"classification": Classification, "sft": InstructionTuning}


def finetune(cfg: DictConfig) -> dict:
    """Validate the config and fine-tune per its task kind; returns the run's results."""
    if in_multirun():  # each job of `-m task=hatebr,assin2 recipe.lr=...` gets its own run dir
        place_sweep_job(cfg)
    validate(cfg)
    return run_finetuning(cfg, TASK_KINDS[cfg.task.kind]())
