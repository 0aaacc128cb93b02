"""Hydra multirun support: per-job run directories and a summary table of the sweep
(`summary.md`, `summary.csv`; docs/recipes.md)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from ttl.errors import TTLError
from ttl.rundir import write_json
from ttl.train.plan import world_size
from ttl.train.sharding import FSDP


def in_multirun() -> bool:
    """True inside a job of `python -m ttl.train -m ...`."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def place_sweep_job(cfg: DictConfig) -> None:
    """Point run_dir at this job's own directory and name its W&B run after the job. Lightning's
    DDP launcher re-executes the command line in child processes, which would start the whole
    sweep again there; `ddp_spawn` starts the ranks from inside the job."""
    hydra = HydraConfig.get()
    with open_dict(cfg):
        sweep_name = cfg.run_name
        cfg.run_dir = hydra.runtime.output_dir
        cfg.run_name = f"{sweep_name}-{hydra.job.num}"
        if "wandb" in (cfg.logger or {}):
            cfg.logger.wandb.group = cfg.logger.wandb.group or sweep_name
        if cfg.trainer.strategy == FSDP and world_size(cfg.trainer) > 1:
            raise TTLError("trainer.strategy=fsdp cannot run inside a sweep (-m): its launcher "
                           "re-executes the command line, sweep included, in every rank; launch "
                           "each sweep point with torchrun or srun instead (no -m)")
        if cfg.trainer.strategy == "ddp" and not ranks_started_by_slurm():
            print("multirun: trainer.strategy=ddp -> ddp_spawn (ddp would re-launch the sweep)")
            cfg.trainer.strategy = "ddp_spawn"


def ranks_started_by_slurm() -> bool:
    """True in a SLURM job of several tasks (hydra/launcher=slurm): SLURM started every rank, so
    Lightning's DDP neither launches nor re-executes anything."""
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1


ROW_FILE = "sweep_row.json"


class SweepSummary(Callback):
    """Collect each job's overrides and final figures; write summary.md/csv at the end. Each job
    writes its row beside its run (`<job dir>/sweep_row.json`): launchers such as submitit's run
    jobs in other processes or on other machines."""

    def on_job_end(self, config: DictConfig, job_return, **kwargs: Any) -> None:
        """Write the job's overrides and the dict that `ttl.train` returned beside its run."""
        job_num = OmegaConf.select(config, "hydra.job.num", default=None)
        if job_num is None:  # Hydra calls this for single runs too
            return
        result = getattr(job_return, "_return_value", None)
        if not isinstance(result, dict):  # an Optuna trial returns only the optimised figure
            result = {"val_ppl": result}
        status = getattr(job_return, "status", None)
        job_dir = Path(config.hydra.runtime.output_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        figures = {key: result.get(key) for key in ("val_ppl", "step", "tokens", "run_dir")}
        write_json(job_dir / ROW_FILE, {"job": job_num, "overrides": " ".join(config.hydra.overrides.task),
                                        **figures, "status": getattr(status, "name", str(status))})

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the table of every job's row and write it next to the jobs."""
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = sorted((json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{ROW_FILE}")),
                      key=lambda row: int(row["job"]))
        if not rows:
            return
        table = summary_table(rows)
        (sweep_dir / "summary.md").write_text(table + "\n")
        with open(sweep_dir / "summary.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"sweep summary ({sweep_dir}/summary.md):\n{table}")


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table: job, overrides, final validation perplexity, steps, tokens, status."""
    lines = ["| job | overrides | final val ppl | steps | tokens | status |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        ppl = "-" if row["val_ppl"] is None else f"{row['val_ppl']:.4f}"
        tokens = "-" if row["tokens"] is None else f"{row['tokens']:,}"
        lines.append(f"| {row['job']} | {row['overrides']} | {ppl} | {row['step'] or '-'} | {tokens} "
                     f"| {row['status']} |")
    return "\n".join(lines)
