"""Each component is built from its own node and handed what it needs: any callback or logger can
be dropped with `~`, and the run still plans and builds; no node copies another's values."""

import re

import pytest
from omegaconf import OmegaConf

from ttl.train.callbacks import build_callbacks
from ttl.train.loggers import build_loggers, finish_wandb
from ttl.train.plan import describe, plan_batch, validate

from ..conftest import ROOT
from .test_plan import make

CALLBACKS = OmegaConf.load(ROOT / "conf" / "callbacks" / "default.yaml").defaults


@pytest.mark.parametrize("dropped", CALLBACKS)
def test_dropping_any_callback_plans_and_builds_the_rest(dropped, tmp_path):
    cfg = make(["experiment=quickstart", f"~callbacks.{dropped}"])
    validate(cfg)
    assert "393,536 parameters" in describe(validate(cfg), plan_batch(validate(cfg)))
    built = build_callbacks(cfg.callbacks, run_dir=str(tmp_path), spawned=False)
    assert len(built) == len(CALLBACKS) - 1 and dropped not in built
    # The callbacks that keep files were handed the run directory, not a copy from the config.
    assert all(str(tmp_path) in str(getattr(c, "run_dir", getattr(c, "dirpath", tmp_path)))
               for c in built.values())
    # The exporter reports the energy of the run's own emissions monitor, handed to it by name.
    if "hf_checkpoint" in built:
        assert built["hf_checkpoint"].emissions is built.get("emissions")


@pytest.mark.parametrize("dropped", ["csv", "wandb"])
def test_dropping_either_logger_builds_the_other_in_the_run_directory(dropped, tmp_path):
    cfg = make(["experiment=quickstart", "logger=[csv,wandb]", f"~logger.{dropped}"])
    validate(cfg)
    try:
        (logger,) = build_loggers(cfg.logger, tmp_path, hparams={"seed": 42})
        assert type(logger).__name__ == ("WandbLogger" if dropped == "csv" else "CSVLogger")
        assert str(logger.save_dir) == str(tmp_path)
    finally:
        finish_wandb()


def test_no_component_node_reads_another_components_key():
    offenders = []
    for group, foreign in (("callbacks", r"\$\{(callbacks|logger|trainer|optimizer|scheduler)\."),
                           ("logger", r"\$\{(callbacks|logger|trainer|optimizer|scheduler)\."),
                           ("scheduler", r"\$\{(callbacks|logger|trainer|optimizer)\."),
                           ("optimizer", r"\$\{(callbacks|logger|trainer|scheduler)\.")):
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            lines = path.read_text().splitlines()
            body = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
            # The run directory is handed by the builder (ttl.cli.build), never copied into a node.
            if re.search(foreign, body) or "${run_dir}" in body:
                offenders.append(path.name)
    assert offenders == []
