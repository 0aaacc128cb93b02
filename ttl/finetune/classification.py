"""Sequence classification end to end: data, fit with selection on validation, test, baseline, export."""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig
from transformers import DataCollatorWithPadding

from ttl.finetune.checkpoint import effective_max_length, load_classifier, load_tokenizer, resolve_checkpoint
from ttl.finetune.data import ExamplesDataModule
from ttl.finetune.export import METRICS_FILE, MODEL_DIR, save_run_results
from ttl.finetune.metrics import majority_baseline
from ttl.finetune.modules import ClassifierModule
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
from ttl.finetune.tasks import encode_split
from ttl.loggers import finish_wandb


def run_classification(cfg: DictConfig) -> dict:
    """Fine-tune `cfg.checkpoint` on `cfg.task`; print and return the results (also in metrics.json)."""
    checkpoint = resolve_checkpoint(str(cfg.checkpoint))
    tokenizer = load_tokenizer(checkpoint, cfg.tokenizer)
    labels = [str(label) for label in cfg.task.labels]
    micro, accumulation = batch_split(cfg)
    splits = load_splits(cfg.data, cfg.seed, need_test=True)
    max_length = effective_max_length(cfg.data.max_length, checkpoint)
    data = cfg.data
    encoded = {role: encode_split(split, tokenizer, data.template, data.label_field, labels, max_length)
               for role, split in splits.items()}
    sizes = {role: len(examples) for role, examples in encoded.items()}
    print(f"{cfg.task.name}: {sizes['train']:,} train / {sizes['validation']:,} validation / "
          f"{sizes['test']:,} test examples; labels {', '.join(labels)}; inputs up to {max_length} tokens")

    set_hardware_flags(cfg)
    model = load_classifier(checkpoint, labels, tokenizer.pad_token_id, attn_implementation(cfg))
    module = ClassifierModule(model, *optimizer_and_scheduler(cfg), num_labels=len(labels),
                              compile_model=cfg.trainer.compile)
    datamodule = ExamplesDataModule(encoded["train"], encoded["validation"], encoded["test"],
                                    DataCollatorWithPadding(tokenizer), micro, cfg.data.num_workers)
    with run_directory(cfg) as run_dir:
        start = time.monotonic()
        try:
            fitted = fit(cfg, module, datamodule, accumulation, run_dir)
            # Restores the selected epoch's weights into `module` before scoring it on test.
            [tested] = fitted.trainer.test(module, datamodule=datamodule, ckpt_path=fitted.best_path,
                                           verbose=False)
        finally:
            finish_wandb()
        if not fitted.trainer.is_global_zero:
            return {}
        baseline = majority_baseline([e["labels"] for e in encoded["train"]],
                                     [e["labels"] for e in encoded["test"]], len(labels))
        results = {
            "task": cfg.task.name,
            "checkpoint": checkpoint,
            "labels": labels,
            "examples": sizes,
            "max_length": max_length,
            "selection": {"monitor": cfg.selection.monitor, "mode": cfg.selection.mode, **fitted.selected},
            "validation": module.history,
            "test": {"accuracy": round(tested["test/acc"], 6), "macro_f1": round(tested["test/macro_f1"], 6)},
            "majority_baseline": {**baseline, "label_name": labels[baseline["label"]]},
            "fit_and_test_seconds": round(time.monotonic() - start, 1),
            "energy": fitted.energy(),
            "run_dir": str(run_dir),
            "model_dir": str(run_dir / MODEL_DIR),
        }
        save_run_results(module.model, tokenizer, run_dir, results)
        drop_checkpoint(cfg, fitted)
    print(report(results, run_dir))
    return results


def report(results: dict, run_dir: Path) -> str:
    """The end-of-run summary: validation per epoch, the selection, test beside the baseline."""
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
