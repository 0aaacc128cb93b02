"""CausalLMModule: train/loss is the token-weighted mean over all micro-batches of a step."""

import csv
from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from ttl.errors import TTLError
from ttl.model import llama_config
from ttl.train.module import CausalLMModule
from ttl.train.optim import build_adamw

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


def test_train_lr_is_the_rate_each_logged_step_trained_at(tmp_path):
    import math

    from ttl.train.optim import warmup_cosine

    module = CausalLMModule(llama_config(TINY), partial(build_adamw, lr=1e-2),
                            partial(warmup_cosine, warmup_steps=4, total_steps=10), tokens_per_step=128)
    trainer = pl.Trainer(accelerator="cpu", max_steps=10, accumulate_grad_batches=2, log_every_n_steps=1,
                         logger=pl.loggers.CSVLogger(tmp_path), limit_val_batches=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(batches(20), batch_size=None))
    with open(next(tmp_path.rglob("metrics.csv"))) as handle:
        logged = {int(r["step"]): float(r["train/lr"]) for r in csv.DictReader(handle) if r.get("train/lr")}
    assert sorted(logged) == list(range(10))
    for step, value in logged.items():  # step k (0-based) trains at warmup (k+1)/4, then cosine
        factor = (step + 1) / 4 if step < 4 else 0.5 * (1 + math.cos(math.pi * (step - 4) / 6))
        assert value == pytest.approx(1e-2 * factor, rel=1e-6), step


def test_z_loss_adds_exactly_its_term_on_both_loss_paths():
    from ttl.train.losses import z_loss_term

    torch.manual_seed(0)
    batch = batches(1)[0]
    plain = CausalLMModule(llama_config(TINY), None, None, tokens_per_step=32)
    with_z = CausalLMModule(llama_config(TINY), None, None, tokens_per_step=32, z_loss=1e-2)
    with_z.model.load_state_dict(plain.model.state_dict())
    chunked = CausalLMModule(llama_config(TINY), None, None, tokens_per_step=32, z_loss=1e-2,
                             loss_impl="chunked")
    chunked.model.load_state_dict(plain.model.state_dict())
    with torch.no_grad():
        logits = plain.model(input_ids=batch["input_ids"]).logits.double()
        # The term computed here from first principles: logsumexp over the vocabulary, squared,
        # averaged over the positions whose next token is a target.
        lse = torch.logsumexp(logits[:, :-1], dim=-1)
        keep = batch["labels"][:, 1:] != -100
        expected = (lse.square() * keep).sum() / keep.sum()
        assert float(z_loss_term(logits, batch["labels"])) == pytest.approx(float(expected), rel=1e-6)
        base, total = float(plain(batch)), float(with_z(batch))
        assert total - base == pytest.approx(1e-2 * float(expected), rel=1e-4)
        assert float(chunked(batch)) == pytest.approx(total, rel=1e-5)


def test_zero_initialised_output_projections_start_at_zero_and_learn():
    module = CausalLMModule(llama_config(TINY), partial(build_adamw, lr=1e-2), None, tokens_per_step=128,
                            zero_init_output=True)
    layer = module.model.model.layers[0]
    assert not layer.self_attn.o_proj.weight.any() and not layer.mlp.down_proj.weight.any()
    assert layer.self_attn.q_proj.weight.any() and module.model.lm_head.weight.any()
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches(2), batch_size=None))
    assert layer.self_attn.o_proj.weight.any() and layer.mlp.down_proj.weight.any()


def test_zero_initialised_head_gives_uniform_first_logits_and_learns():
    module = CausalLMModule(llama_config(TINY), partial(build_adamw, lr=1e-2), None, tokens_per_step=128,
                            zero_init_head=True)
    batch = next(iter(DataLoader(batches(1), batch_size=None)))
    logits = module.model(input_ids=batch["input_ids"]).logits
    assert not logits.any()  # log(vocab) loss at step 0, whatever the width
    assert module.model.get_input_embeddings().weight.any()
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches(2), batch_size=None))
    assert module.model.lm_head.weight.any()
    with pytest.raises(TTLError, match="zero_init_head"):
        CausalLMModule(llama_config({**TINY, "tie_word_embeddings": True}), partial(build_adamw, lr=1e-2),
                       None, tokens_per_step=128, zero_init_head=True)


def test_tied_embeddings_are_one_tensor_in_training_in_the_export_and_after_loading(tmp_path):
    from transformers import AutoModelForCausalLM

    from ttl.model import count_parameters

    tied = {**TINY, "tie_word_embeddings": True}
    module = CausalLMModule(llama_config(tied), partial(build_adamw, lr=1e-2), None, tokens_per_step=128)
    untied = CausalLMModule(llama_config(TINY), None, None, tokens_per_step=128)
    assert count_parameters(untied.model) - count_parameters(module.model) == 256 * 32
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches(2), batch_size=None))
    model = module.model
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "model.safetensors")
    assert len([k for k in stored if "embed_tokens" in k or "lm_head" in k]) == 1
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)
