"""Sequence classification: labelled examples, a classifier head, selection on validation, test
beside the majority baseline (the run itself is `ttl.finetune.runner.run_finetuning`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from transformers import DataCollatorWithPadding

from ttl.finetune.checkpoint import load_classifier
from ttl.finetune.export import METRICS_FILE, MODEL_DIR
from ttl.finetune.lightning_modules import ClassifierModule
from ttl.finetune.metrics import majority_baseline
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
from ttl.finetune.tasks import encode_split


class Classification:
    """Fine-tuning for a task with labels (hatebr, assin2, faquad_nli, imdb, agnews)."""

    needs_test = True
    seconds_key = "fit_and_test_seconds"

    def encode(self, cfg: DictConfig, splits: dict, tokenizer, max_length: int) -> TaskData:
        labels = [str(label) for label in cfg.task.labels]
        data = cfg.data
        encoded = {role: encode_split(split, tokenizer, data.template, data.label_field, labels, max_length)
                   for role, split in splits.items()}
        sizes = {role: len(examples) for role, examples in encoded.items()}
        print(f"{cfg.task.name}: {sizes['train']:,} train / {sizes['validation']:,} validation / "
              f"{sizes['test']:,} test examples; labels {', '.join(labels)}; "
              f"inputs up to {max_length} tokens")
        return TaskData(encoded["train"], encoded["validation"], encoded["test"],
                        DataCollatorWithPadding(tokenizer), {"labels": labels, "examples": sizes})

    def module(self, cfg: DictConfig, checkpoint: str, tokenizer) -> ClassifierModule:
        labels = [str(label) for label in cfg.task.labels]
        model = load_classifier(checkpoint, labels, tokenizer.pad_token_id, attn_implementation(cfg))
        return ClassifierModule(model, *optimizer_and_scheduler(cfg), num_labels=len(labels),
                                compile_model=cfg.hardware.compile)

    def score(self, fitted: Fitted, module, datamodule, data: TaskData) -> dict:
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


def run_classification(cfg: DictConfig) -> dict:
    """Fine-tune `cfg.checkpoint` on `cfg.task` (labels); print and return the results."""
    return run_finetuning(cfg, Classification())
