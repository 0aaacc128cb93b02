"""Crashes while writing a checkpoint leave the previous one usable."""

import json

import pytest
import torch
from lightning.fabric.utilities.cloud_io import _atomic_save
from transformers import AutoModelForCausalLM

from ttl.model import llama_config
from ttl.train.callbacks.hf_checkpoint import HFCheckpoint
from ttl.train.module import CausalLMModule

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=2048, max_position_embeddings=32)


class _FakeTrainer:
    """Just what HFCheckpoint.export reads: a step, metrics and the callback list."""

    def __init__(self, step):
        self.global_step = step
        self.is_global_zero = True
        self.callbacks = []


class _BrokenTokenizer:
    def save_pretrained(self, path):
        (path / "tokenizer.json").write_text("{half")
        raise OSError("disk full")


def test_crash_during_hf_export_keeps_the_previous_export(tmp_path, tiny_tokenizer):
    module = CausalLMModule(llama_config(TINY), optimizer_factory=None, scheduler_factory=None,
                            tokens_per_step=64)
    exporter = HFCheckpoint(str(tmp_path), every_n_steps=10)
    exporter.tokenizer = tiny_tokenizer
    module.val_history.append((10, 12.5))  # validated at step 10: the export carries it
    exporter.export(_FakeTrainer(10), module)
    before = (tmp_path / "step-10" / "model.safetensors").read_bytes()
    exporter.tokenizer = _BrokenTokenizer()
    with pytest.raises(OSError, match="disk full"):
        exporter.export(_FakeTrainer(20), module)
    assert not (tmp_path / "step-20").exists()
    assert (tmp_path / "step-10" / "model.safetensors").read_bytes() == before
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "step-10").num_parameters() > 0
    state = json.loads((tmp_path / "step-10" / "trainer_state.json").read_text())
    assert state["step"] == 10 and state["tokens"] == 640 and state["val_ppl"] == 12.5


def test_crash_during_lightning_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    _atomic_save({"global_step": 10}, path)

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError):
        _atomic_save({"global_step": 20}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["global_step"] == 10
