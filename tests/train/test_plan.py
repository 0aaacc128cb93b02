"""Config tree: every combination composes; recipes; derived batch arithmetic; bad values."""

import itertools

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ttl.cli import register_resolvers
from ttl.errors import TTLError
from ttl.train.plan import describe, lightning_trainer_kwargs, plan_batch, precision_note, validate

from ..conftest import ROOT

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
MODELS = ["160m", "460m", "tiny"]
TRAINERS = sorted(p.stem for p in (ROOT / "conf" / "trainer").glob("*.yaml"))


def make(overrides: list[str]):
    register_resolvers()
    with initialize_config_module("ttl.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    OmegaConf.resolve(cfg)
    return cfg


def test_the_expected_groups_exist():
    assert {"quickstart", "ttl_160m", "ttl_460m"} <= set(EXPERIMENTS)
    assert {"cpu", "a100", "h100", "ddp", "fsdp", "multinode"} <= set(TRAINERS)


@pytest.mark.parametrize(
    "experiment, model, trainer", list(itertools.product(EXPERIMENTS, MODELS, TRAINERS))
)
def test_every_combination_composes_and_plans(experiment, model, trainer):
    cfg = make([f"experiment={experiment}", f"model={model}", f"trainer={trainer}"])
    validate(cfg)
    plan = plan_batch(validate(cfg))
    assert plan.micro_batch_size * plan.world_size * plan.accumulation * plan.seq_len == (
        cfg.model.recipe.tokens_per_step
    )
    kwargs = lightning_trainer_kwargs(validate(cfg), plan)
    assert "micro_batch_size" not in kwargs and kwargs["accumulate_grad_batches"] >= 1


def test_root_defaults_are_the_160m_paper_recipe():
    cfg = make(["model=160m", "trainer=a100"])
    assert cfg.model.hidden_size == 768 and cfg.optimizer.lr == 6e-4
    assert cfg.scheduler.warmup_steps == 5000 and cfg.trainer.max_steps == 458_000
    assert cfg.model.recipe.checkpoint_every_n_steps == 22_000 and cfg.seed == 42
    assert cfg.data.path == "nicholasKluge/Pt-Corpus-Instruct" and cfg.data.seq_len == 2048
    assert cfg.trainer.precision == "bf16-mixed"
    assert list(cfg.optimizer.betas) == [0.9, 0.999] and cfg.optimizer.eps == 1e-8
    assert cfg.optimizer.weight_decay == 0.01
    plan = plan_batch(validate(cfg))
    assert (plan.tokens_per_step, plan.micro_batch_size, plan.accumulation) == (8192, 4, 1)


def test_model_460m_brings_its_recipe():
    cfg = make(["model=460m", "trainer=a100"])
    plan = plan_batch(validate(cfg))
    assert cfg.optimizer.lr == 3e-4 and cfg.scheduler.warmup_steps == 10_000
    assert cfg.trainer.max_steps == 1_200_000 and cfg.model.recipe.checkpoint_every_n_steps == 25_000
    assert (plan.micro_batch_size, plan.accumulation) == (2, 2)


def test_command_line_overrides_win_over_the_recipe():
    cfg = make(["model=460m", "optimizer.lr=1e-3", "trainer.max_steps=10"])
    assert cfg.optimizer.lr == 1e-3 and cfg.trainer.max_steps == 10
    # The schedule is handed the run's step count by the builder: it ends where the run ends.
    from ttl.cli import build

    schedule = build(cfg.scheduler, total_steps=cfg.trainer.max_steps)
    assert schedule.keywords["total_steps"] == 10 and "total_steps" not in cfg.scheduler


def test_experiments_hold_the_paper_recipes():
    small, large = make(["experiment=ttl_160m"]), make(["experiment=ttl_460m"])
    assert (small.trainer.max_steps, small.model.recipe.checkpoint_every_n_steps) == (458_000, 22_000)
    assert (large.trainer.max_steps, large.model.recipe.checkpoint_every_n_steps) == (1_200_000, 25_000)
    assert small.seed == large.seed == 42


def test_accumulation_follows_devices_and_keeps_the_global_batch():
    cfg = make(["model=160m", "trainer=ddp", "trainer.devices=2", "hardware.micro_batch_size=2"])
    plan = plan_batch(validate(cfg))
    assert (plan.world_size, plan.accumulation, plan.tokens_per_step) == (2, 1, 8192)


def test_validation_interval_counts_optimizer_steps():
    cfg = make(["model=460m", "trainer=a100"])
    kwargs = lightning_trainer_kwargs(validate(cfg), plan_batch(validate(cfg)))
    # Validation at every checkpoint (25,000 optimizer steps), counted in micro-batches.
    assert kwargs["val_check_interval"] == 25_000 * 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["hardware.micro_batch_size=3"], "does not divide into hardware.micro_batch_size=3"),
        (["data.seq_len=4096"], "data.seq_len=4096 exceeds"),
        (["model.recipe.tokens_per_step=1000"], "not a multiple of data.seq_len"),
        (["resume=maybe"], "resume='maybe'"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    cfg = make(overrides)
    with pytest.raises(TTLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg)
        plan_batch(validate(cfg))


RECIPE_SWITCHES = {
    "beta2": {"optimizer.betas": [0.9, 0.95]},
    "weight_decay": {"optimizer.weight_decay": 0.1, "optimizer.decay_embeddings": False},
    "lr_floor": {"scheduler.min_lr_ratio": 0.1},
    "z_loss": {"module.z_loss": 1e-4},
    "tied": {"model.tie_word_embeddings": True},
    "zero_init": {"module.zero_init_output": True},
    "zero_head": {"module.zero_init_head": True},
    "doc_masking": {"data.document_masking": True},
}


def flat(node, prefix=""):
    """Every leaf of a resolved config as dotted key -> value."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def test_published_is_the_default_and_each_switch_changes_only_what_it_names():
    base = flat(OmegaConf.to_container(make(["experiment=recipe_study"])))
    assert base == flat(OmegaConf.to_container(make(["experiment=recipe_study", "recipe_switch=published"])))
    for switch, expected in RECIPE_SWITCHES.items():
        cfg = flat(OmegaConf.to_container(make(["experiment=recipe_study", f"recipe_switch={switch}"])))
        changed = {k: cfg[k] for k in cfg if base.get(k) != cfg[k]}
        assert changed == expected, switch
    muon = make(["experiment=recipe_study", "recipe_switch=muon"])
    assert muon.optimizer._target_ == "ttl.train.optim.build_muon"
    # Each AdamW group's lr is its own key; null (the default) means the Muon lr.
    assert muon.optimizer.lr == 6e-4
    assert {k: muon.optimizer[k] for k in ("embedding_lr", "head_lr", "norm_lr")} == dict.fromkeys(
        ("embedding_lr", "head_lr", "norm_lr"), None)
    assert make(["experiment=recipe_study", "recipe_switch=[beta2,muon]"]).optimizer.betas == [0.9, 0.95]
    wsd = make(["experiment=recipe_study", "recipe_switch=wsd"])
    assert wsd.scheduler._target_.endswith("warmup_stable_decay")
    assert make(["experiment=recipe_study"]).scheduler._target_.endswith("warmup_cosine")


def test_the_modern_160m_recipe_is_the_published_one_under_mup_muon_and_wsd_with_the_input_multiplier():
    """experiment=ttl_160m_modern = experiment=ttl_160m with recipe_switch=[mup,muon,wsd], µP's
    input multiplier 16 and the width-256 proxy's learning rate (round 3 of experiments/recipe_study),
    nothing else but its run name and the evidence its model card states."""
    modern = flat(OmegaConf.to_container(make(["experiment=ttl_160m_modern"])))
    switched = flat(OmegaConf.to_container(make(["experiment=ttl_160m", "recipe_switch=[mup,muon,wsd]",
                                                 "model.input_multiplier=16", "model.recipe.lr=2.4e-3",
                                                 "run_name=ttl-160m-modern"])))
    evidence = modern.pop("model.recipe.evidence")
    assert switched.pop("model.recipe.evidence") is None
    assert modern == switched
    assert "width 64" in evidence and "width 256" in evidence and "nats/token" in evidence
    assert modern["trainer.max_steps"] == 458_000 and modern["model.name"] == "160m"
    assert modern["optimizer._target_"].endswith("build_muon")
    assert modern["scheduler._target_"].endswith("warmup_stable_decay")
    cfg = make(["experiment=ttl_160m_modern", "trainer=a100"])
    text = describe(validate(cfg), plan_batch(validate(cfg)))
    # µP at the base width: the embedding at x16; Muon's hidden steps at match_rms_adamw's
    # 0.2 sqrt(max dim) (x5.54 for 768 x 768 and 3072 x 768, x11.09 for 768 x 3072)
    assert "160m: 162,417,408 parameters" in text
    assert ("hidden lr 0.0133 wd 0.001804; hidden lr 0.0133 wd 0.001804; hidden lr 0.0266 wd 0.0009021; "
            "embedding lr 0.0384 wd 0.000625; head lr 0.0024 wd 0.01; norm lr 0.0024 wd 0") in text


def test_bf16_on_a_cpu_without_native_bf16_is_named_in_the_plan():
    assert "no native bf16" in precision_note("bf16-mixed", "cpu", cpu_has_bf16=False)
    assert "trainer.precision=32" in precision_note("bf16-true", "cpu", cpu_has_bf16=False)
    assert precision_note("bf16-mixed", "cpu", cpu_has_bf16=True) == ""
    assert precision_note("32-true", "cpu", cpu_has_bf16=False) == ""
    assert precision_note("bf16-mixed", "gpu", cpu_has_bf16=False) == ""
    # The plan printed for the recipe study (bf16-mixed on CPU) carries it when this CPU lacks bf16.
    settings = validate(make(["experiment=recipe_study", "data.path=/corpus"]))
    rows = describe(settings, plan_batch(settings)).splitlines()
    line = next(row for row in rows if row.startswith("precision"))
    assert ("no native bf16" in line) == (not torch.ops.mkldnn._is_mkldnn_bf16_supported())
