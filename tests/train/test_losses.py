"""ttl.train.losses: the chunked loss equals Hugging Face's, value and gradients."""

import pytest
import torch

from ttl.model import build_model, llama_config
from ttl.train.losses import causal_lm_loss

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=300, max_position_embeddings=32)


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("chunk_size, masked", [(7, False), (64, True), (1000, True)])
def test_chunked_loss_and_gradients_equal_hugging_faces(chunk_size, masked):
    torch.manual_seed(0)
    model = build_model(llama_config(TINY))
    ids = torch.randint(4, 300, (3, 20))
    labels = ids.clone()
    if masked:
        labels[0, 5:] = -100
        labels[2, :3] = -100
    batch = {"input_ids": ids, "labels": labels}

    reference = model(**batch).loss
    reference.backward()
    expected = gradients(model)
    model.zero_grad()
    loss = causal_lm_loss(model, batch, chunk_size=chunk_size)
    (loss * 3.0).backward()  # a scaled loss (accumulation divides it): gradients scale along

    # Both compute the logits' log-softmax in fp32: equal to fp32 rounding.
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for name, grad in gradients(model).items():
        torch.testing.assert_close(grad, 3.0 * expected[name], rtol=1e-4, atol=1e-6, msg=name)


def _train(loss_impl: str, compile_model: bool, steps: int = 3) -> tuple[list[float], dict]:
    from functools import partial

    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from ttl.train.module import CausalLMModule
    from ttl.train.optim import build_adamw

    torch.manual_seed(0)
    module = CausalLMModule(llama_config(TINY), partial(build_adamw, lr=1e-2), None, tokens_per_step=40,
                            compile_model=compile_model, loss_impl=loss_impl)
    losses: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    batches = [torch.randint(4, 300, (2, 20), generator=torch.Generator().manual_seed(i))
               for i in range(steps)]
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Record()])
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    return losses, {k: v.detach().clone() for k, v in module.model.state_dict().items()}


def test_training_with_the_chunked_loss_follows_the_hugging_face_loss():
    hf_losses, hf_weights = _train("hf", compile_model=False)
    losses, weights = _train("chunked", compile_model=False)
    assert losses == pytest.approx(hf_losses, rel=1e-5)
    assert not [k for k in weights if "_orig_mod" in k]
    for name, value in weights.items():
        torch.testing.assert_close(value, hf_weights[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_the_chunked_loss_compiles_and_trains_alike():
    hf_losses, _ = _train("hf", compile_model=False)
    losses, weights = _train("chunked", compile_model=True)
    assert losses == pytest.approx(hf_losses, rel=1e-4)
    assert not [k for k in weights if "_orig_mod" in k]


def test_an_unknown_loss_implementation_names_the_key():
    from ttl.errors import TTLError
    from ttl.train.plan import validate

    from .test_plan import make

    with pytest.raises(TTLError, match="hardware.loss_impl='fused': choose one of hf, chunked"):
        validate(make(["hardware.loss_impl=fused"]))
