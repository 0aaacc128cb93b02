"""Hydra multirun: one run directory per job, grouped W&B runs, a summary table."""

import csv

import pytest

from ttl.train.sweep import summary_table

from ..conftest import run_cli


def test_summary_table_formats_each_job():
    rows = [{"job": 0, "overrides": "optimizer.lr=0.001", "val_ppl": 12.3456, "step": 10,
             "tokens": 40960, "run_dir": "x", "status": "COMPLETED"},
            {"job": 1, "overrides": "optimizer.lr=0.003", "val_ppl": None, "step": None,
             "tokens": None, "run_dir": None, "status": "FAILED"}]
    table = summary_table(rows).splitlines()
    assert table[2] == "| 0 | optimizer.lr=0.001 | 12.3456 | 10 | 40,960 | COMPLETED |"
    assert table[3] == "| 1 | optimizer.lr=0.003 | - | - | - | FAILED |"


def test_the_slurm_launcher_sends_one_job_per_point_with_a_rank_per_gpu():
    """hydra/launcher=slurm composes hydra-submitit-launcher's SLURM launcher with ttl's defaults."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[sweep]'")
    from hydra import compose, initialize_config_module

    from ttl.cli import register_resolvers

    register_resolvers()
    with initialize_config_module("ttl.conf", version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=8",
                                          "hydra.launcher.nodes=2", "trainer=multinode"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 8, 8)
    assert launcher.timeout_min == 2880 and launcher.max_num_timeout == 3  # requeued, then resumed
    assert cfg.trainer.strategy == "ddp"


def test_a_slurm_job_of_several_tasks_keeps_ddp(monkeypatch):
    from ttl.train.sweep import ranks_started_by_slurm

    monkeypatch.setenv("SLURM_NTASKS", "16")
    assert ranks_started_by_slurm()
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert not ranks_started_by_slurm()


def two_learning_rates(tmp_path, shared_cache, steps: int, *overrides: str):
    """A quickstart sweep over lr 1e-3 and 3e-3 (checkpoint and validation every 3 steps): its
    directory, once both jobs have exported their last step."""
    args = ["-m", "ttl.train", "-m", "experiment=quickstart", "optimizer.lr=1e-3,3e-3",
            f"trainer.max_steps={steps}", "model.recipe.eval_every_n_steps=3",
            "model.recipe.checkpoint_every_n_steps=3", "callbacks.emissions.enabled=false", *overrides]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "runs" / "quickstart-sweep"
    for job in ("0", "1"):
        assert (sweep / job / f"step-{steps}" / "model.safetensors").is_file()
    return sweep


@pytest.mark.slow
def test_a_sweep_through_submitits_local_executor_runs_every_point(tmp_path, shared_cache):
    """The submitit launcher's local executor (what hydra/launcher=slurm uses on a cluster)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[sweep]'")
    sweep = two_learning_rates(tmp_path, shared_cache, 3, "hydra/launcher=submitit_local", "logger=none")
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # submitit ran them as jobs
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert len(rows) == 2 and all(r["status"] == "COMPLETED" and float(r["val_ppl"]) > 1 for r in rows)


@pytest.mark.slow
def test_two_job_sweep_gives_two_runs_and_a_summary(tmp_path, shared_cache):
    sweep = two_learning_rates(tmp_path, shared_cache, 6, "logger=wandb")
    for job in ("0", "1"):
        assert (sweep / job / "config.yaml").is_file()
        assert list((sweep / job / "wandb").glob("offline-run-*-quickstart-" + job))
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [r["overrides"].split()[1] for r in rows] == ["optimizer.lr=0.001", "optimizer.lr=0.003"]
    assert all(float(r["val_ppl"]) > 1 and r["status"] == "COMPLETED" for r in rows)
    assert "| job | overrides | final val ppl |" in (sweep / "summary.md").read_text()
    config = (sweep / "1" / "config.yaml").read_text()
    assert "group: quickstart" in config and "run_name: quickstart-1" in config


@pytest.mark.slow
def test_optuna_search_minimises_validation_perplexity(tmp_path, shared_cache):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[sweep]'")
    args = ["-m", "ttl.train", "-m", "experiment=quickstart", "hparams_search=lr_wd",
            "hydra.sweeper.n_trials=2", "trainer.max_steps=4", "model.recipe.eval_every_n_steps=2",
            "model.recipe.checkpoint_every_n_steps=2", "logger=none", "callbacks.emissions.enabled=false"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "runs" / "quickstart-sweep"
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert len(rows) == 2 and all("optimizer.lr=" in r["overrides"] for r in rows)
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in best
    assert float(best.split("best_value:")[1].split()[0]) == min(float(r["val_ppl"]) for r in rows)


@pytest.mark.slow
def test_sweep_of_ddp_jobs_runs_each_job_once_on_two_processes(tmp_path, shared_cache):
    args = ["-m", "ttl.train", "-m", "experiment=quickstart", "optimizer.lr=1e-3,2e-3",
            "trainer.devices=2", "trainer.strategy=ddp", "hardware.micro_batch_size=16",
            "trainer.max_steps=3", "model.recipe.eval_every_n_steps=3",
            "model.recipe.checkpoint_every_n_steps=3",
            "logger=none", "callbacks.emissions.enabled=false"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ddp -> ddp_spawn") == 2
    sweep = tmp_path / "runs" / "quickstart-sweep"
    # No child rank started a sweep of its own: just the two jobs and the sweep's files.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["quickstart-sweep"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [int(r["step"]) for r in rows] == [3, 3] and all(float(r["val_ppl"]) > 1 for r in rows)
    for job in ("0", "1"):
        assert "2 device(s)" in result.stdout
        assert (sweep / job / "step-3" / "model.safetensors").is_file()


def test_sweep_of_fsdp_jobs_on_several_processes_is_refused(tmp_path, shared_cache):
    args = ["-m", "ttl.train", "-m", "experiment=quickstart", "optimizer.lr=1e-3,2e-3",
            "trainer.devices=2", "trainer.strategy=fsdp", "hardware.micro_batch_size=16", "logger=none"]
    result = run_cli(args, tmp_path, {"TTL_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 2
    assert "trainer.strategy=fsdp cannot run inside a sweep (-m)" in result.stderr
    assert not list((tmp_path / "runs").glob("*/*/checkpoints"))
