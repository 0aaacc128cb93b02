"""LightningModules of fine-tuning (a sequence classifier and a supervised chat causal LM), their
metrics (accuracy and macro-F1 with torchmetrics) and the majority-class baseline.

Both wrap a Hugging Face model, log `train/loss` and `progress/tokens` (the W&B logger's x-axis)
and keep one entry per validation in `history` (the run report and the selection read it).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from ttl.finetune.data import majority_label


def metric_collection(num_labels: int, prefix: str) -> MetricCollection:
    """`<prefix>acc` (plain accuracy) and `<prefix>macro_f1` as torchmetrics objects (DDP-aware)."""
    # average="micro" is plain accuracy; torchmetrics' default for multiclass is macro.
    return MetricCollection({"acc": MulticlassAccuracy(num_labels, average="micro"),
                             "macro_f1": MulticlassF1Score(num_labels, average="macro")}, prefix=prefix)


def scores(predictions: list[int], targets: list[int], num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over the classes present in targets or predictions; a class never
    predicted has F1 0) of `predictions` against `targets`."""
    preds, target = torch.tensor(predictions), torch.tensor(targets)
    return {"accuracy": float(multiclass_accuracy(preds, target, num_labels, average="micro")),
            "macro_f1": float(multiclass_f1_score(preds, target, num_labels, average="macro"))}


def majority_baseline(train_labels: list[int], test_labels: list[int], num_labels: int) -> dict:
    """Scores on test of always predicting the training split's most frequent label."""
    label = majority_label(train_labels)
    return {"label": label, **scores([label] * len(test_labels), test_labels, num_labels)}


class FinetuneModule(pl.LightningModule):
    """What the two kinds share: optimizer, schedule, token count, compile, validation history."""

    def __init__(self, model: torch.nn.Module, optimizer_factory: Callable,
                 scheduler_factory: Callable | None, compile_model: bool = False) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer_factory
        self.scheduler_factory = scheduler_factory
        self.compile_model = compile_model
        self.val_loss = MeanMetric()
        self.register_buffer("tokens_seen", torch.zeros((), dtype=torch.long), persistent=False)
        self.history: list[dict[str, float | int]] = []

    def configure_model(self) -> None:
        """Compile in place, so checkpoints keep plain parameter names (no `_orig_mod.`)."""
        if self.compile_model and not getattr(self, "_compiled", False):
            self.model.compile()
            self._compiled = True

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Mean loss of the micro-batch (the model's own loss: cross-entropy over its labels)."""
        loss = self.model(**batch).loss
        mask = batch.get("attention_mask")  # the count stays on the device: no host sync per step
        self.tokens_seen += mask.sum() if mask is not None else batch["input_ids"].numel()
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("progress/tokens", self.tokens_seen.float())
        return loss

    def _record(self, values: dict[str, torch.Tensor]) -> None:
        """Log a validation's figures and keep them in `history` (fitting only, not re-validation)."""
        self.log_dict(values, prog_bar=True)
        if self.trainer.state.fn == TrainerFn.FITTING and not self.trainer.sanity_checking:
            entry = {"epoch": self.current_epoch, "step": self.global_step}
            self.history.append(entry | {k: round(float(v), 6) for k, v in values.items()})

    def configure_optimizers(self):
        """The optimizer from its partial; the schedule (known once the data is) spans the run's steps."""
        optimizer = self.optimizer_factory(self.model)
        if self.scheduler_factory is None:
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, num_training_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ClassifierModule(FinetuneModule):
    """Sequence classification; validation logs `val/acc`, `val/macro_f1`, `val/loss`."""

    def __init__(self, model: torch.nn.Module, optimizer_factory: Callable,
                 scheduler_factory: Callable | None, num_labels: int, compile_model: bool = False) -> None:
        super().__init__(model, optimizer_factory, scheduler_factory, compile_model)
        self.val_metrics = metric_collection(num_labels, "val/")
        self.test_metrics = metric_collection(num_labels, "test/")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Update accuracy, macro-F1 and the example-weighted loss."""
        out = self.model(**batch)
        self.val_metrics.update(out.logits.argmax(-1), batch["labels"])
        self.val_loss.update(out.loss.detach(), weight=batch["labels"].numel())

    def on_validation_epoch_end(self) -> None:
        """Compute over the whole validation split (all ranks), log and record."""
        values = {**self.val_metrics.compute(), "val/loss": self.val_loss.compute()}
        self.val_metrics.reset()
        self.val_loss.reset()
        self._record(values)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Update the test metrics."""
        self.test_metrics.update(self.model(**batch).logits.argmax(-1), batch["labels"])

    def on_test_epoch_end(self) -> None:
        """Log `test/acc` and `test/macro_f1`."""
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()


class SFTModule(FinetuneModule):
    """Causal LM on conversations whose labels are -100 outside the assistant's tokens; `val/loss`
    weighs each micro-batch's mean loss by its supervised tokens, `val/ppl` = exp(val/loss)."""

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Accumulate the loss weighted by the number of predicted (supervised) tokens."""
        # The model shifts labels by one: position 0 is never predicted.
        supervised = (batch["labels"][:, 1:] != -100).sum()
        if int(supervised) == 0:
            return
        self.val_loss.update(self.model(**batch).loss.detach(), weight=supervised)

    def on_validation_epoch_end(self) -> None:
        """Log and record val/loss and val/ppl."""
        loss = self.val_loss.compute()
        self.val_loss.reset()
        self._record({"val/loss": loss, "val/ppl": torch.exp(loss)})
