"""perf/* checked against the test's own clock: on a 2-process run with gradient accumulation 4,
and in-process with validation, a checkpoint save and exports inside the logging intervals."""

import csv
import json
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from transformers import LlamaConfig, LlamaForCausalLM

from ttl.model import build_model, count_parameters, llama_config
from ttl.train.callbacks.hf_checkpoint import HFCheckpoint
from ttl.train.callbacks.resume import ResumeCheckpoint
from ttl.train.callbacks.throughput import ThroughputMonitor

from ...conftest import ROOT, run_cli

PEAK = 1e12


@pytest.mark.slow
def test_tokens_per_second_and_mfu_under_accumulation_on_two_processes(tmp_path, shared_cache):
    clock = tmp_path / "clock.jsonl"
    args = ["-m", "ttl.train", "experiment=quickstart", "logger=csv", "callbacks.emissions.enabled=false",
            "trainer.devices=2", "trainer.strategy=ddp", "hardware.micro_batch_size=4",
            "trainer.max_steps=16", "trainer.log_every_n_steps=4",
            "model.recipe.checkpoint_every_n_steps=100",
            "model.recipe.eval_every_n_steps=100", f"callbacks.throughput.peak_flops={PEAK}",
            "+callbacks.clock._target_=tests.probes.StepClock", f"+callbacks.clock.path={clock}"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache), "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 micro-batch x 128 seq x 2 device(s) x 4 accumulation" in result.stdout
    with open(next((tmp_path / "runs" / "quickstart" / "logs").glob("version_*/metrics.csv"))) as f:
        logged = [row for row in csv.DictReader(f) if row.get("perf/tokens_per_sec")]
    times = {r["step"]: r["time"] for r in map(json.loads, clock.read_text().splitlines())}
    # The CSV logger files a logging step's row under the step count before its update.
    steps = [int(row["step"]) + 1 for row in logged]
    assert steps == [4, 8, 12, 16]

    from omegaconf import OmegaConf
    model_cfg = OmegaConf.to_container(OmegaConf.load(tmp_path / "runs" / "quickstart" / "config.yaml").model)
    model = build_model(llama_config(model_cfg), "meta")
    n = count_parameters(model) - model_cfg["vocab_size"] * model_cfg["hidden_size"]  # no input embedding
    flops = 6 * n + 12 * model_cfg["num_hidden_layers"] * model_cfg["hidden_size"] * 128
    for previous, step, row in zip(steps, steps[1:], logged[1:], strict=False):
        measured = (step - previous) * 4096 / (times[step] - times[previous])
        rate = float(row["perf/tokens_per_sec"])
        assert rate == pytest.approx(measured, rel=0.25)
        assert float(row["perf/tokens_per_sec_per_device"]) == pytest.approx(rate / 2, rel=1e-6)
        assert float(row["perf/mfu"]) == pytest.approx(rate * flops / (PEAK * 2), rel=1e-6)


# The in-process run: 12 optimizer steps of 4 x 16 tokens, logged every 4 steps. Each training
# step sleeps TRAIN_SLEEP (standing in for compute); the work that is not training sleeps longer
# and records when it slept, so the test knows the training time of each interval by itself.
SEQ, BATCH, TRAIN_SLEEP, OTHER_SLEEP = 16, 4, 0.1, 0.5


class Slept:
    """(what, start, end): the deliberate sleeps of the work that is not training, host times."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []

    def sleep(self, what: str) -> None:
        start = time.perf_counter()
        time.sleep(OTHER_SLEEP)
        self.spans.append((what, start, time.perf_counter()))


class TinyLM(pl.LightningModule):
    """A 2-layer Llama whose training steps sleep TRAIN_SLEEP and whose validation only sleeps."""

    def __init__(self, slept: Slept) -> None:
        super().__init__()
        self.model = LlamaForCausalLM(LlamaConfig(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=SEQ))
        self.tokens_per_step = BATCH * SEQ
        self.slept = slept

    def training_step(self, batch, batch_idx):
        time.sleep(TRAIN_SLEEP)
        return self.model(input_ids=batch, labels=batch).loss

    def validation_step(self, batch, batch_idx):
        self.slept.sleep("validation")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class SlowIO(TorchCheckpointIO):
    """A checkpoint write that sleeps and leaves an empty file (which last.ckpt links to)."""

    def __init__(self, slept: Slept) -> None:
        self.slept = slept

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        self.slept.sleep("save")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch()


class SlowExport(HFCheckpoint):
    """HFCheckpoint whose export only sleeps (its batch-end hook is the real one)."""

    def __init__(self, run_dir, every_n_steps: int, slept: Slept) -> None:
        super().__init__(run_dir, every_n_steps, export_on_train_end=False)
        self.slept = slept

    @property
    def state_key(self) -> str:
        return f"SlowExport[{self.every_n_steps}]"  # two of them in one Trainer

    def export(self, trainer, pl_module):
        self.slept.sleep(f"export {trainer.global_step}")


class Clock(pl.Callback):
    """Host time at the start of training and after every optimizer update."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.times[0] = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.times[trainer.global_step] = time.perf_counter()


class Recorded(Logger):
    """Every (step, metrics) Lightning hands its loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    name, version = "recorded", 0

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def test_tokens_per_second_leaves_out_validation_checkpoint_saves_and_exports(tmp_path):
    slept, clock, logger = Slept(), Clock(), Recorded()
    module = TinyLM(slept)
    data = torch.randint(0, 64, (12 * BATCH, SEQ))
    # Inside interval (4, 8]: a validation after step 6. Inside (8, 12]: an export at step 9 by a
    # callback before the monitor (inside the batch's hooks), one at step 10 by a callback after it
    # (between batches), and checkpoint saves at step 11 (Lightning runs checkpoint callbacks last).
    # The clock reads the time right before the monitor does (its logging then comes after both).
    callbacks = [SlowExport(tmp_path, 9, slept), clock, ThroughputMonitor(peak_flops=PEAK),
                 SlowExport(tmp_path, 10, slept), ResumeCheckpoint(str(tmp_path), every_n_steps=11)]
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=12, log_every_n_steps=4,
                         val_check_interval=6, limit_val_batches=1, num_sanity_val_steps=0,
                         callbacks=callbacks, logger=logger, plugins=[SlowIO(slept)],
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)

    # At step 11 ResumeCheckpoint writes step-11.ckpt and links last.ckpt to it (no second
    # write); the validation after step 12 comes after the last log.
    assert [what for what, _, _ in slept.spans] == [
        "validation", "export 9", "export 10", "save", "validation"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_symlink()
    logged = [(step, metrics) for step, metrics in logger.rows if "perf/tokens_per_sec" in metrics]
    assert [step + 1 for step, _ in logged] == [4, 8, 12]  # filed under the step count before the update
    model = module.model
    n = count_parameters(model) - model.config.vocab_size * model.config.hidden_size  # no input embedding
    flops = 6 * n + 12 * 2 * 32 * SEQ
    for (start, end), (_, metrics) in zip([(0, 4), (4, 8), (8, 12)], logged, strict=True):
        wall = clock.times[end] - clock.times[start]
        inside = [b - a for _, a, b in slept.spans if clock.times[start] < a < clock.times[end]]
        assert len(inside) == {0: 0, 4: 1, 8: 3}[start]
        other = sum(inside)
        training = wall - other
        assert training >= 4 * TRAIN_SLEEP
        expected = 4 * BATCH * SEQ / training
        rate = metrics["perf/tokens_per_sec"]
        assert rate == pytest.approx(expected, rel=0.1)
        if other:  # a figure that kept the other work in would fail the same check
            assert 4 * BATCH * SEQ / wall != pytest.approx(expected, rel=0.1)
        assert metrics["perf/tokens_per_sec_per_device"] == pytest.approx(rate, rel=1e-6)
        assert metrics["perf/mfu"] == pytest.approx(rate * flops / PEAK, rel=1e-6)
