"""Run by test_ddp.py in a subprocess: 2-process gloo DDP training on shards, then a resume.

    python ddp_resume_script.py SHARD_DIR TOKENIZER_DIR OUT_DIR

Each rank writes the input ids of every training batch it received to OUT_DIR/<phase>-rank<r>.pt.
Lightning's DDP launcher re-runs this script for rank 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from transformers import AutoTokenizer

from ttl.data.datamodule import DataSettings, TTLDataModule
from ttl.model import llama_config
from ttl.train.module import CausalLMModule

SEQ_LEN, MICRO, STEPS, CKPT_EVERY = 32, 4, 6, 3
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=2048, max_position_embeddings=SEQ_LEN)


class Record(Callback):
    def __init__(self, path: Path) -> None:
        self.path, self.batches = path, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch["input_ids"].clone())

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save(self.batches, f"{self.path}-rank{trainer.global_rank}.pt")


def run(phase: str, shards: str, tokenizer_dir: str, out: Path, ckpt: str | None) -> None:
    pl.seed_everything(0, verbose=False)
    module = CausalLMModule(llama_config(TINY), lambda m: torch.optim.SGD(m.parameters(), lr=0.01), None,
                            tokens_per_step=MICRO * 2 * SEQ_LEN)
    datamodule = TTLDataModule(DataSettings(path=shards, seq_len=SEQ_LEN, shuffle_window=2, num_workers=2),
                                 AutoTokenizer.from_pretrained(tokenizer_dir), MICRO)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_steps=STEPS, logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[Record(out / phase), ModelCheckpoint(dirpath=out / f"ckpt-{phase}", filename="step-{step}",
                                                        auto_insert_metric_name=False,
                                                        every_n_train_steps=CKPT_EVERY, save_top_k=-1)],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)


if __name__ == "__main__":
    shard_dir, tokenizer_path, out_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    run("full", shard_dir, tokenizer_path, out_dir, None)
    run("resumed", shard_dir, tokenizer_path, out_dir, str(out_dir / "ckpt-full" / f"step-{CKPT_EVERY}.ckpt"))
