"""µP (ttl.train.parametrization): exact at the base width, the stated multiples elsewhere, plain
Hugging Face exports, and the plan of the 160m run under recipe_switch=mup."""

from functools import partial

import pytest
import torch
from transformers import AutoModelForCausalLM

from ttl.errors import TTLError
from ttl.model import llama_config
from ttl.train.module import CausalLMModule
from ttl.train.optim import build_adamw, build_muon
from ttl.train.parametrization import Mup, muon_shape_factor, parameter_roles, width_multiplier
from ttl.train.plan import describe, plan_batch, validate

from ..conftest import recipe_study_smoke
from .test_plan import make


def proxy(width: int, layers: int = 2) -> dict:
    """A proxy with the 160m's shape ratios (head size 64, MLP 4x) at `width`."""
    return dict(hidden_size=width, num_hidden_layers=layers, num_attention_heads=width // 64,
                intermediate_size=4 * width, vocab_size=256, max_position_embeddings=64)


def module(width: int, base_width: int | None, optimizer=build_adamw, seed: int = 0,
           input_multiplier: float = 1.0, output_multiplier: float = 1.0, **kwargs) -> CausalLMModule:
    torch.manual_seed(seed)
    mup = None if base_width is None else Mup(width_multiplier("mup", width, base_width), input_multiplier,
                                              output_multiplier)
    return CausalLMModule(llama_config(proxy(width)), partial(optimizer, lr=1e-3, weight_decay=0.1, **kwargs),
                          None, tokens_per_step=64, mup=mup)


def settings_by_parameter(optimizer) -> dict[int, tuple[float, float]]:
    return {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


def roles_by_name(model) -> dict[str, str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: role for role, params in parameter_roles(model).items() for p in params}


def test_at_the_base_width_every_initial_value_and_every_learning_rate_are_the_published():
    standard, mup = module(128, None), module(128, base_width=128)
    named = zip(standard.model.named_parameters(), mup.model.named_parameters(), strict=True)
    for (name, a), (_, b) in named:
        assert torch.equal(a, b), name
    sp_opt, mup_opt = standard.configure_optimizers(), mup.configure_optimizers()
    sp_settings = settings_by_parameter(sp_opt)
    mup_settings = settings_by_parameter(mup_opt)
    pairs = zip(standard.model.parameters(), mup.model.parameters(), strict=True)
    assert all(sp_settings[id(a)] == mup_settings[id(b)] for a, b in pairs)
    assert {g["group"] for g in mup_opt.param_groups} == {"embedding", "hidden", "head", "norm"}


@pytest.mark.parametrize(("beta", "alpha"), [(1.0, 1.0), (2.0, 0.5)])
def test_at_another_width_each_role_has_the_stated_multiples(beta, alpha):
    # width 128 against a base of 512: m = 1/4 (a proxy four times narrower than its target);
    # the input multiplier β scales the embedding's init and lr, the output multiplier α the
    # head's, each dividing its decay.
    m = 0.25
    standard = module(128, None)
    mup = module(128, base_width=512, input_multiplier=beta, output_multiplier=alpha)
    roles = roles_by_name(mup.model)
    init_scale = {"embedding": beta, "hidden": m ** -0.5, "head": alpha / m, "norm": 1.0}
    named = zip(standard.model.named_parameters(), mup.model.named_parameters(), strict=True)
    for (name, a), (_, b) in named:
        torch.testing.assert_close(b, a * init_scale[roles[name]], rtol=1e-6, atol=0, msg=name)
    settings = {g["group"]: (g["lr"], g["weight_decay"]) for g in mup.configure_optimizers().param_groups}
    assert settings["embedding"] == pytest.approx((1e-3 * beta, 0.1 / beta))
    assert settings["hidden"] == pytest.approx((1e-3 / m, 0.1 * m))
    assert settings["head"] == pytest.approx((1e-3 * alpha / m, 0.1 * m / alpha))
    assert settings["norm"] == pytest.approx((1e-3, 0.0))
    # The decay's time scale 1 / (lr x wd) is the same for every decayed role, at every width.
    assert {round(lr * wd, 12) for lr, wd in settings.values() if wd} == {1e-4}


def test_hidden_init_std_shrinks_with_the_square_root_of_the_width_and_the_head_with_the_width():
    # Measured on fresh draws, not restated from the rule: std x sqrt(width) is constant for the
    # hidden matrices, std x width for the head, std for the embedding.
    stds = {}
    for width in (128, 512):
        model = module(width, base_width=128).model
        roles = parameter_roles(model)
        stds[width] = {role: torch.cat([p.flatten() for p in params]).std().item()
                       for role, params in roles.items() if role != "norm"}
    assert stds[512]["hidden"] * 2 == pytest.approx(stds[128]["hidden"], rel=0.02)
    assert stds[512]["head"] * 4 == pytest.approx(stds[128]["head"], rel=0.02)
    assert stds[512]["embedding"] == pytest.approx(stds[128]["embedding"], rel=0.02)


def one_step(mod: CausalLMModule, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    optimizer = mod.configure_optimizers()
    mod(batch).backward()
    optimizer.step()
    return {n: p.detach().clone() for n, p in mod.model.named_parameters()}


def test_muon_under_mup_steps_as_published_muon_at_the_base_width():
    batch = torch.randint(0, 256, (2, 32))
    published = one_step(module(128, None, optimizer=build_muon), batch)
    mup = one_step(module(128, base_width=128, optimizer=build_muon), batch)
    for name, value in published.items():
        torch.testing.assert_close(mup[name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_muon_under_mup_uses_the_width_independent_adjustment_per_shape():
    mod = module(256, base_width=128, optimizer=build_muon)
    optimizer = mod.configure_optimizers()
    hidden = [g for g in optimizer.param_groups if g["group"] == "hidden"]
    assert {g["adjust_lr_fn"] for g in hidden} == {"original"}
    for group in hidden:
        rows, columns = group["params"][0].shape
        assert all(p.shape == (rows, columns) for p in group["params"])
        # torch's original adjustment x the group's factor = match_rms_adamw at the base shape
        step = group["lr"] * max(1, rows / columns) ** 0.5
        assert step == pytest.approx(1e-3 * 0.2 * max(rows / 2, columns / 2) ** 0.5)
        assert group["lr"] * group["weight_decay"] == pytest.approx(1e-3 * 0.1)
    assert muon_shape_factor((512, 128), 1.0) == pytest.approx(0.2 * 512 ** 0.5 / 2)
    head = next(g for g in optimizer.param_groups if g["group"] == "head")
    assert (head["lr"], head["weight_decay"]) == pytest.approx((1e-3 / 2, 0.1 * 2))
    scaled = module(256, base_width=128, optimizer=build_muon, input_multiplier=4,
                    output_multiplier=0.25).configure_optimizers()
    groups = {g["group"]: (g["lr"], g["weight_decay"]) for g in scaled.param_groups}
    assert groups["head"] == pytest.approx((1e-3 / 8, 0.1 * 8))
    assert groups["embedding"] == pytest.approx((4e-3, 0.1 / 4))


def test_a_mup_export_loads_plainly_and_gives_the_logits_training_saw(tmp_path):
    mod = module(128, base_width=512)
    batch = torch.randint(0, 256, (2, 32))
    one_step(mod, batch)
    mod.model.save_pretrained(tmp_path)
    assert "parametrization" not in (tmp_path / "config.json").read_text()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    mod.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, mod.model(batch).logits, rtol=0, atol=0)
        # The logits are the µP model's, not the standard one's: the head's 1/m is in the weights.
        assert not torch.allclose(loaded(batch).logits, module(128, None).model(batch).logits)


def test_mup_refuses_tied_embeddings_and_an_unknown_parametrization():
    with pytest.raises(TTLError, match="tie_word_embeddings"):
        validate(make(["recipe_switch=[mup,tied]"]))
    with pytest.raises(TTLError, match="model.parametrization='mu'"):
        width_multiplier("mu", 768, 768)
    # The output multiplier is µP's; in the standard parametrization it would do nothing.
    for key in ("input_multiplier", "output_multiplier"):
        with pytest.raises(TTLError, match=f"model.{key}=0.5: .* under µP only"):
            validate(make([f"model.{key}=0.5"]))


def test_the_160m_plan_under_mup_prints_its_parameters_and_the_published_learning_rates():
    cfg = make(["model=160m", "trainer=a100", "recipe_switch=mup"])
    text = describe(validate(cfg), plan_batch(validate(cfg)))
    assert "160m: 162,417,408 parameters" in text
    assert "width multiplier 1 " in text
    assert ("embedding lr 0.0006 wd 0.01; hidden lr 0.0006 wd 0.01; head lr 0.0006 wd 0.01; "
            "norm lr 0.0006 wd 0") in text
    proxy_cfg = make(["experiment=mup_study", "model=proxy_128", "recipe_switch=mup", "model.recipe.lr=6e-4"])
    proxy_text = describe(validate(proxy_cfg), plan_batch(validate(proxy_cfg)))
    assert "hidden lr 0.0036 wd 0.001667; head lr 0.0036 wd 0.001667" in proxy_text
    scaled_cfg = make(["experiment=mup_study", "model=proxy_128", "recipe_switch=mup", "model.recipe.lr=6e-4",
                       "model.input_multiplier=2", "model.output_multiplier=0.25"])
    scaled_text = describe(validate(scaled_cfg), plan_batch(validate(scaled_cfg)))
    assert "input multiplier 2, output multiplier 0.25;" in scaled_text
    assert ("embedding lr 0.0012 wd 0.005; hidden lr 0.0036 wd 0.001667; head lr 0.0009 wd 0.006667"
            in scaled_text)


@pytest.mark.slow
def test_the_recipe_study_trains_under_mup_and_its_export_is_what_training_held(tmp_path, sample_hub_layout):
    """`python -m ttl.train experiment=recipe_study recipe_switch=mup data.path=DIR` on a copy in the
    Hub's layout: the optimizer's groups carry µP's rates (hidden 128 against a base of 768, m = 1/6),
    and the export, loaded with plain `from_pretrained`, holds the checkpointed training weights."""
    result = recipe_study_smoke(tmp_path, sample_hub_layout, "mup")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mup: base width 768, width multiplier 0.166667" in result.stdout
    run_dir = tmp_path / "runs" / "recipe-study"
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    rates = {g["group"]: g["initial_lr"] for g in state["optimizer_states"][0]["param_groups"]}
    assert rates == pytest.approx({"embedding": 6e-4, "hidden": 6e-4 * 6, "head": 6e-4 * 6, "norm": 6e-4})
    export = AutoModelForCausalLM.from_pretrained(run_dir / "step-4").eval()
    trained = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    for name, value in export.state_dict().items():
        assert torch.equal(value, trained[name]), name
    batch = torch.randint(0, 4096, (1, 16))
    with torch.no_grad():
        assert torch.isfinite(export(batch).logits).all()
