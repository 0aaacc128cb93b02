"""CausalLMModule: train/loss is the token-weighted mean over all micro-batches of a step."""

import csv
from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from ttl.lightning_module import CausalLMModule
from ttl.llama import llama_config
from ttl.optim import build_adamw

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=256, max_position_embeddings=16)


class MicroBatchLosses(pl.Callback):
    """Each micro-batch's mean loss and target count, computed independently before its forward."""

    def __init__(self) -> None:
        self.records: list[tuple[int, float, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        with torch.no_grad():
            logits = pl_module.model(input_ids=batch["input_ids"]).logits[:, :-1].double()
        targets = batch["labels"][:, 1:]
        losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                   ignore_index=-100, reduction="sum")
        count = int((targets != -100).sum())
        self.records.append((trainer.global_step + 1, float(losses) / count, count))


def batches(n: int) -> list[dict[str, torch.Tensor]]:
    """Micro-batches whose rows carry very different numbers of targets (labels -100 elsewhere)."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(n):
        ids = torch.randint(4, 256, (2, 16), generator=generator)
        labels = ids.clone()
        labels[:, 2 + (i * 5) % 13:] = -100  # from 1 to 13 targets per row
        out.append({"input_ids": ids, "labels": labels})
    return out


def test_train_loss_is_the_token_weighted_mean_of_the_steps_micro_batches(tmp_path):
    torch.manual_seed(0)
    module = CausalLMModule(llama_config(TINY), partial(build_adamw, lr=1e-2), None, tokens_per_step=128)
    probe = MicroBatchLosses()
    trainer = pl.Trainer(accelerator="cpu", max_steps=6, accumulate_grad_batches=4, log_every_n_steps=2,
                         logger=pl.loggers.CSVLogger(tmp_path), callbacks=[probe], limit_val_batches=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(batches(24), batch_size=None))
    with open(next(tmp_path.rglob("metrics.csv"))) as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("train/loss")]
    logged = {int(r["step"]) + 1: float(r["train/loss"]) for r in rows}
    assert sorted(logged) == [2, 4, 6]
    for step, value in logged.items():
        micro = [(loss, count) for s, loss, count in probe.records if s == step]
        assert len(micro) == 4
        weighted = sum(loss * count for loss, count in micro) / sum(count for _, count in micro)
        assert value == pytest.approx(weighted, rel=1e-5)
        # Not the last micro-batch's loss, nor the plain mean of the four.
        assert abs(value - micro[-1][0]) > 1e-3 and abs(value - sum(m[0] for m in micro) / 4) > 1e-4
