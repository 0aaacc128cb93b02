"""ttl.optim: weight-decay groups and learning-rate schedules."""

import pytest
import torch

from ttl.llama import build_model, llama_config
from ttl.optim import build_adamw, warmup_constant, warmup_cosine, warmup_stable_decay

TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=300, max_position_embeddings=32)


def test_norms_are_exempt_from_weight_decay():
    model = build_model(llama_config(TINY))
    optimizer = build_adamw(model, lr=1e-3, weight_decay=0.01)
    decayed, exempt = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and exempt["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("norm" in names[id(p)] for p in exempt["params"])
    assert all(p.ndim == 2 for p in decayed["params"])
    assert len(decayed["params"]) + len(exempt["params"]) == len(list(model.parameters()))


def test_decay_all_params_reproduces_the_original():
    model = build_model(llama_config(TINY))
    optimizer = build_adamw(model, lr=1e-3, weight_decay=0.01, decay_all_params=True)
    assert len(optimizer.param_groups) == 1
    assert len(optimizer.param_groups[0]["params"]) == len(list(model.parameters()))


def _factors(scheduler_fn, steps, **kwargs):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = scheduler_fn(optimizer, **kwargs)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_cosine_warms_up_linearly_then_decays_to_min():
    lrs = _factors(warmup_cosine, 101, warmup_steps=10, total_steps=100, min_lr_ratio=0.1)
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)
    assert lrs[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_constant_and_wsd_shapes():
    assert _factors(warmup_constant, 5, warmup_steps=0) == [1.0] * 5
    lrs = _factors(warmup_stable_decay, 101, warmup_steps=10, total_steps=100, decay_fraction=0.2)
    assert lrs[50] == 1.0 and lrs[79] == 1.0
    assert lrs[90] == pytest.approx(0.5) and lrs[100] == pytest.approx(0.0)


def test_embeddings_can_be_exempt_from_decay_tied_head_included():
    for tied in (False, True):
        model = build_model(llama_config({**TINY, "tie_word_embeddings": tied}))
        decayed, exempt = build_adamw(model, lr=1e-3, weight_decay=0.1, decay_embeddings=False).param_groups
        embedding = model.get_input_embeddings().weight
        assert any(p is embedding for p in exempt["params"])
        assert not any(p is embedding for p in decayed["params"])
        assert any(p is model.lm_head.weight for p in decayed["params"]) != tied


def test_beta2_reaches_adamw():
    model = build_model(llama_config(TINY))
    assert build_adamw(model, lr=1e-3, betas=[0.9, 0.95]).param_groups[0]["betas"] == (0.9, 0.95)
