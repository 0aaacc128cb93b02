"""ttl.train.optim: weight-decay groups, Muon's groups and learning-rate schedules."""

import copy
from functools import partial

import pytest
import torch

from ttl.model import build_model, llama_config
from ttl.train.optim import build_adamw, build_muon, warmup_constant, warmup_cosine, warmup_stable_decay

from ..conftest import recipe_study_smoke

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


def _muon(model, **kwargs):
    return build_muon(model, **{"lr": 1e-3, "embedding_lr": 2e-3, "head_lr": 3e-3, "norm_lr": 4e-3, **kwargs})


@pytest.mark.parametrize("tied", [False, True])
def test_muon_takes_only_the_hidden_matrices_and_every_parameter_lands_in_one_group(tied):
    model = build_model(llama_config({**TINY, "num_hidden_layers": 2, "tie_word_embeddings": tied}))
    optimizer = _muon(model)
    names = {id(p): n for n, p in model.named_parameters()}
    placed = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(placed) == sorted(names) and len(placed) == len(set(placed))
    by_group = {g["group"]: g for g in optimizer.param_groups}
    muon = [g for g in optimizer.param_groups if g["algorithm"] == "muon"]
    assert [g["group"] for g in muon] == ["hidden"]
    hidden = {names[id(p)] for p in muon[0]["params"]}
    projections = {f"model.layers.{i}.{kind}.{name}.weight" for i in range(2)
                   for kind, names_ in (("self_attn", "qkvo"), ("mlp", ("gate", "up", "down")))
                   for name in (f"{n}_proj" for n in names_)}
    assert hidden == projections
    assert {names[id(p)] for p in by_group["embedding"]["params"]} == {"model.embed_tokens.weight"}
    assert ("head" in by_group) != tied  # a tied head is the embedding's tensor
    assert all(p.ndim == 1 for p in by_group["norm"]["params"])
    lrs = {g["group"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == ({"hidden": 1e-3, "embedding": 2e-3, "norm": 4e-3} | ({} if tied else {"head": 3e-3}))
    assert by_group["norm"]["weight_decay"] == 0.0 and by_group["hidden"]["weight_decay"] == 0.01


def test_muon_steps_its_groups_with_torch_muon_and_the_rest_with_adamw():
    torch.manual_seed(0)
    model = build_model(llama_config(TINY))
    reference = copy.deepcopy(model)
    ids = torch.randint(4, 300, (2, 16))
    for m in (model, reference):
        m(input_ids=ids, labels=ids).loss.backward()
    optimizer = _muon(model, adjust_lr_fn="match_rms_adamw")
    optimizer.step()
    # The same update from the two torch optimizers, built directly over the same split.
    groups = {g["group"]: [dict(reference.named_parameters())[n] for n in
                           [k for k, p in model.named_parameters() if any(p is q for q in g["params"])]]
              for g in optimizer.param_groups}
    torch.optim.Muon(groups["hidden"], lr=1e-3, weight_decay=0.01, adjust_lr_fn="match_rms_adamw").step()
    torch.optim.AdamW([{"params": groups["embedding"], "lr": 2e-3, "weight_decay": 0.01},
                       {"params": groups["head"], "lr": 3e-3, "weight_decay": 0.01},
                       {"params": groups["norm"], "lr": 4e-3, "weight_decay": 0.0}],
                      betas=(0.9, 0.999)).step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_muon_state_survives_a_state_dict_round_trip_and_schedulers_reach_every_group():
    torch.manual_seed(0)
    model = build_model(llama_config(TINY))
    ids = torch.randint(4, 300, (2, 16))
    optimizer = _muon(model)
    scheduler = warmup_cosine(optimizer, warmup_steps=2, total_steps=10)
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
        [base * scheduler.lr_lambdas[0](3) for base in (1e-3, 2e-3, 3e-3, 4e-3)])
    saved = copy.deepcopy(optimizer.state_dict())
    fresh = _muon(model)
    fresh.load_state_dict(saved)
    model(input_ids=ids, labels=ids).loss.backward()
    before = copy.deepcopy(model.state_dict())
    optimizer.step()
    after_original = copy.deepcopy(model.state_dict())
    model.load_state_dict(before)
    fresh.step()  # the loaded optimizer takes exactly the step the original took
    for key, value in model.state_dict().items():
        assert torch.equal(value, after_original[key]), key
    assert set(fresh.state[model.model.layers[0].self_attn.q_proj.weight]) == {"momentum_buffer"}
    assert set(fresh.state[model.model.norm.weight]) == {"step", "exp_avg", "exp_avg_sq"}


def test_a_resumed_muon_run_holds_the_optimizer_state_of_the_uninterrupted_run(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from ttl.train.module import CausalLMModule

    # One batch repeated: a plain DataLoader restarts on resume, so both runs see the same data.
    ids = torch.randint(4, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    data = DataLoader([ids] * 8, batch_size=None)

    def fit(max_steps: int, ckpt_path=None, callbacks=()):
        torch.manual_seed(0)
        schedule = partial(warmup_cosine, warmup_steps=2, total_steps=6)
        module = CausalLMModule(llama_config(TINY), _muon, schedule, tokens_per_step=32)
        trainer = pl.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, limit_val_batches=0,
                             callbacks=list(callbacks), enable_checkpointing=bool(callbacks),
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
        trainer.fit(module, train_dataloaders=data, ckpt_path=ckpt_path)
        return trainer

    straight = fit(6)
    every_3 = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1)
    fit(3, callbacks=[every_3])
    resumed = fit(6, ckpt_path=str(next((tmp_path / "ckpt").glob("*step=3*.ckpt"))))
    a, b = straight.optimizers[0].state_dict(), resumed.optimizers[0].state_dict()
    assert a["state"].keys() == b["state"].keys()
    for index, state in a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["state"][index][key]), (index, key)
    assert [g["lr"] for g in a["param_groups"]] == [g["lr"] for g in b["param_groups"]]
    models = straight.lightning_module, resumed.lightning_module
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(p, q)


def test_the_recipe_study_trains_with_torch_muon_on_the_hidden_matrices(tmp_path, sample_hub_layout):
    """`python -m ttl.train experiment=recipe_study recipe_switch=muon data.path=DIR` on a copy in
    the Hub's layout: the checkpoint's optimizer holds Muon's momentum for exactly the hidden
    matrices and AdamW's moments for the rest."""
    result = recipe_study_smoke(tmp_path, sample_hub_layout, "muon")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "build_muon: lr 0.0006" in result.stdout
    state = torch.load(tmp_path / "runs" / "recipe-study" / "checkpoints" / "last.ckpt", weights_only=False)
    optimizer = state["optimizer_states"][0]
    kinds = {g["group"]: (g["algorithm"], len(g["params"])) for g in optimizer["param_groups"]}
    assert kinds == {"hidden": ("muon", 4 * 7), "embedding": ("adamw", 1), "head": ("adamw", 1),
                     "norm": ("adamw", 4 * 2 + 1)}
    for group in optimizer["param_groups"]:
        expected = {"momentum_buffer"} if group["algorithm"] == "muon" else {"step", "exp_avg", "exp_avg_sq"}
        assert all(set(optimizer["state"][i]) == expected for i in group["params"]), group["group"]
