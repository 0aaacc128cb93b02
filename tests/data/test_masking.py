"""Document masking: a packed row gives each document the logits it gets alone."""

import numpy as np
import pytest
import torch

from ttl.data.batches import pack_batch, unpack_batch
from ttl.model import build_model, llama_config

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            intermediate_size=128, vocab_size=300, max_position_embeddings=64)


def batch_of(ids, doc_starts, document_masking, packing):
    """The batch dict the loader hands the module for these rows."""
    return unpack_batch(pack_batch(ids, doc_starts, document_masking, packing))


def packed_row(lengths, seed=0):
    generator = np.random.default_rng(seed)
    docs = [np.concatenate([[1], generator.integers(4, 300, n - 1)]) for n in lengths]
    starts = np.cumsum([0, *lengths[:-1]])
    return docs, np.concatenate(docs)[None, :], [starts]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_row_gives_each_document_its_own_logits(attn):
    torch.manual_seed(0)
    model = build_model(llama_config(TINY, attn)).eval()
    docs, ids, starts = packed_row([5, 9, 18])
    batch = batch_of(ids, starts, document_masking=True, packing="ttl")
    with torch.no_grad():
        packed = model(**batch).logits[0]
        unmasked = model(**batch_of(ids, starts, False, "ttl")).logits[0]
        offset = 0
        for doc in docs:
            alone = model(input_ids=torch.tensor(doc)[None]).logits[0]
            span = slice(offset, offset + len(doc))
            torch.testing.assert_close(packed[span], alone, atol=1e-5, rtol=1e-5)
            if offset:  # without masking, later documents attend to earlier ones
                assert (unmasked[span] - alone).abs().max() > 1e-3
            offset += len(doc)


def test_module_loss_uses_the_masked_batch():
    from ttl.train.module import CausalLMModule

    torch.manual_seed(0)
    module = CausalLMModule(llama_config(TINY), optimizer_factory=None, scheduler_factory=None,
                            tokens_per_step=32)
    _, ids, starts = packed_row([10, 22])
    masked, plain = batch_of(ids, starts, True, "ttl"), batch_of(ids, starts, False, "ttl")
    with torch.no_grad():
        assert not torch.isclose(module(masked), module(plain))


def test_eos_packing_masks_the_first_token_of_each_later_document():
    ids = np.arange(10)[None, :]
    batch = batch_of(ids, [np.array([0, 4, 7])], True, "eos")
    assert batch["labels"][0].tolist() == [0, 1, 2, 3, -100, 5, 6, -100, 8, 9]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    assert "labels" not in batch_of(ids, [np.array([0, 4])], True, "ttl")


def test_a_batch_without_labels_adds_nothing_to_the_validation_loss():
    from ttl.data.batches import lossless_batch, unpack_batch
    from ttl.train.module import CausalLMModule

    torch.manual_seed(0)
    module = CausalLMModule(llama_config(TINY), optimizer_factory=None, scheduler_factory=None,
                            tokens_per_step=32)
    ids = np.random.default_rng(0).integers(4, 300, (2, 16))
    module.on_validation_epoch_start()
    with torch.no_grad():
        module.validation_step(batch_of(ids, [np.array([0])] * 2, False, "ttl"), 0)
        loss, tokens = module._val_loss_sum.clone(), int(module._val_tokens)
        module.validation_step(unpack_batch(lossless_batch(ids)), 1)
    assert tokens == 2 * 15 and torch.isfinite(loss)
    assert int(module._val_tokens) == tokens and torch.equal(module._val_loss_sum, loss)
