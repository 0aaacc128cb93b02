"""Exact mid-epoch resume through real Lightning checkpoints: prepared shards, and raw text
prepared into shards on first use (data.format=auto)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from ttl.data.datamodule import DataSettings, TTLDataModule
from ttl.errors import TTLError
from ttl.model import llama_config
from ttl.train.module import CausalLMModule

from .conftest import SEQ_LEN

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=2048, max_position_embeddings=SEQ_LEN)
MICRO, ACCUMULATE, STEPS, CKPT_EVERY = 4, 2, 5, 2


class Record(Callback):
    """Keeps every training batch the module receives."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch["input_ids"].clone())


def module() -> CausalLMModule:
    torch.manual_seed(0)
    return CausalLMModule(llama_config(TINY), lambda m: torch.optim.SGD(m.parameters(), lr=0.01), None,
                          tokens_per_step=MICRO * ACCUMULATE * SEQ_LEN)


def fit(datamodule, ckpt_dir, ckpt_path=None, steps=STEPS) -> list[torch.Tensor]:
    record = Record()
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=steps, accumulate_grad_batches=ACCUMULATE, logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=[record, ModelCheckpoint(
            dirpath=ckpt_dir, filename="step-{step}", auto_insert_metric_name=False,
            every_n_train_steps=CKPT_EVERY, save_top_k=-1)],
    )
    trainer.fit(module(), datamodule=datamodule, ckpt_path=ckpt_path)
    return record.batches


def shards(path, tokenizer, **overrides):
    settings = DataSettings(**{"path": str(path), "seq_len": SEQ_LEN, "format": "shards", "shuffle_window": 2,
                               **overrides})
    return TTLDataModule(settings, tokenizer, MICRO)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("format", ["shards", "auto"])
def test_resumed_run_sees_exactly_the_batches_of_the_uninterrupted_run(
        format, workers, shard_dir, sample_dir, tiny_tokenizer, prepared_cache, tmp_path):
    def make():
        if format == "shards":
            return shards(shard_dir, tiny_tokenizer, num_workers=workers)
        return shards(sample_dir, tiny_tokenizer, num_workers=workers, format="auto",
                      prepared_dir=str(prepared_cache), prepare_num_proc=1)

    full = fit(make(), tmp_path)
    assert len(full) == STEPS * ACCUMULATE
    # The checkpoint written after optimizer step 2 (micro-batch 4), while Lightning had
    # already fetched micro-batch 5.
    resumed = fit(make(), tmp_path / "again", ckpt_path=tmp_path / "step-2.ckpt")
    done = CKPT_EVERY * ACCUMULATE
    assert len(resumed) == len(full) - done
    assert all(torch.equal(a, b) for a, b in zip(resumed, full[done:], strict=True))


def test_resume_on_another_worker_count_continues_exactly(shard_dir, tiny_tokenizer, tmp_path):
    """The saved position is global: another number of loader workers continues the same order."""
    full = fit(shards(shard_dir, tiny_tokenizer), tmp_path)
    resumed = fit(shards(shard_dir, tiny_tokenizer, num_workers=2), tmp_path / "again",
                  ckpt_path=tmp_path / "step-2.ckpt")
    done = CKPT_EVERY * ACCUMULATE
    assert len(resumed) == len(full) - done
    assert all(torch.equal(a, b) for a, b in zip(resumed, full[done:], strict=True))


def test_resume_with_another_seed_is_refused(shard_dir, tiny_tokenizer, tmp_path):
    fit(shards(shard_dir, tiny_tokenizer), tmp_path, steps=CKPT_EVERY)
    with pytest.raises(TTLError, match=r"refusing to resume.*order: checkpoint \[42"):
        fit(shards(shard_dir, tiny_tokenizer, seed=7), tmp_path / "again",
            ckpt_path=tmp_path / f"step-{CKPT_EVERY}.ckpt")


def test_a_checkpoint_of_removed_raw_streaming_is_refused(shard_dir, tiny_tokenizer, tmp_path):
    """A checkpoint written by data.format=raw (removed in house round 3) names that and what to do."""
    fit(shards(shard_dir, tiny_tokenizer), tmp_path, steps=CKPT_EVERY)
    checkpoint = torch.load(tmp_path / f"step-{CKPT_EVERY}.ckpt", weights_only=False)
    assert checkpoint["TTLDataModule"]["kind"] == "shards"
    # The data state raw streaming saved: its layout and the batch count it replayed.
    checkpoint["TTLDataModule"] = {"kind": "raw", "batches": CKPT_EVERY * ACCUMULATE, "fingerprint": {},
                                   "world_size": 1, "num_workers": 1, "micro_batch_size": MICRO}
    torch.save(checkpoint, tmp_path / "raw.ckpt")
    with pytest.raises(TTLError, match=r"refusing to resume, the checkpoint was trained with data.format=raw "
                                       r"\(raw text tokenized on the fly\), which was removed; start a new "
                                       r"run .*or resume with the ttl version that wrote the checkpoint"):
        fit(shards(shard_dir, tiny_tokenizer), tmp_path / "again", ckpt_path=tmp_path / "raw.ckpt")


def test_resume_on_changed_shards_is_refused_naming_what_changed(shard_dir, sample_dir, tiny_tokenizer_dir,
                                                                 tiny_tokenizer, tmp_path):
    from .conftest import prepare_shards

    fit(shards(shard_dir, tiny_tokenizer), tmp_path, steps=CKPT_EVERY)
    edited = tmp_path / "edited"
    edited.mkdir()
    for path in sample_dir.glob("*.jsonl"):  # the same corpus minus its last training document
        lines = path.read_text().splitlines(keepends=True)
        (edited / path.name).write_text("".join(lines[:-1] if path.name.startswith("train") else lines))
    other = prepare_shards(edited, tiny_tokenizer_dir, tmp_path / "other")
    with pytest.raises(TTLError, match=r"refusing to resume, the training data differs.*source: checkpoint"):
        fit(shards(other, tiny_tokenizer), tmp_path / "again",
            ckpt_path=tmp_path / f"step-{CKPT_EVERY}.ckpt")
