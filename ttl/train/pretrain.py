"""The training flow behind `python -m ttl.train`: from a composed config to a trained run."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from ttl.card.render import write_card
from ttl.cli import build
from ttl.data.datamodule import TTLDataModule
from ttl.errors import TTLError
from ttl.model import llama_config, resolve_attn_implementation
from ttl.rundir import (
    DATA_RECORD,
    checkpoint_dir,
    checkpoint_is_readable,
    config_hash,
    holds_a_run,
    is_primary_process,
    latest_good_checkpoint,
    owned_run_dir,
    read_states,
    resume_candidates,
    save_config,
    saved_config_hash,
    write_json,
)
from ttl.tokenizer import load_tokenizer, train_from_path
from ttl.train.callbacks import build_callbacks
from ttl.train.checkpoint_io import RecordedCheckpointIO
from ttl.train.config import TrainConfig
from ttl.train.loggers import build_loggers, finish_wandb, wandb_step_in_checkpoint
from ttl.train.module import CausalLMModule
from ttl.train.parametrization import mup_of
from ttl.train.plan import describe, lightning_trainer_kwargs, plan_batch, validate
from ttl.train.sweep import in_multirun, place_sweep_job


class Preempted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint to resume from."""

    def __init__(self, step: int, checkpoint) -> None:
        super().__init__(f"preempted at step {step}: checkpoint saved to {checkpoint}; "
                         "run the same command to resume")


def prepare_tokenizer(cfg: TrainConfig):
    """Load `tokenizer.path`, training it first when missing and `train_if_missing` is set."""
    path, recipe = cfg.tokenizer.path, cfg.tokenizer.train_if_missing
    if recipe is not None and not Path(path).exists():
        print(f"training a {recipe.vocab_size:,}-token tokenizer on {recipe.data_path} -> {path}")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        train_from_path(recipe.data_path, path, vocab_size=recipe.vocab_size,
                        model_max_length=cfg.model.max_position_embeddings)
    tokenizer = load_tokenizer(path)
    if len(tokenizer) != cfg.model.vocab_size:
        raise TTLError(f"tokenizer.path={path} has {len(tokenizer):,} tokens but "
                       f"model.vocab_size={cfg.model.vocab_size:,}; they must match")
    return tokenizer


def resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> str | None:
    """The .ckpt to resume from, per `resume`: auto (the run's newest checkpoint that loads),
    never, or a path."""
    if cfg.resume == "auto":
        good = latest_good_checkpoint(run_dir)
        if good is None and resume_candidates(run_dir):
            raise TTLError(f"{run_dir}/checkpoints: no readable checkpoint (all truncated or corrupt); "
                           "use resume=never with another run_name, or resume=PATH.ckpt")
        return str(good) if good else None
    if cfg.resume == "never":
        if resume_candidates(run_dir) or holds_a_run(run_dir):
            raise TTLError(f"run directory {run_dir} already holds a run and resume=never; "
                           "choose another run_name or use resume=auto")
        return None
    path = Path(cfg.resume)
    if not path.is_file():
        raise TTLError(f"resume={cfg.resume}: no such checkpoint file")
    if not checkpoint_is_readable(path):
        raise TTLError(f"resume={cfg.resume}: unreadable checkpoint (truncated or corrupt)")
    return str(path)


def data_line(record: dict) -> str:
    """One line on what the run trains and validates on, for the console."""
    holdout = record.get("holdout")
    where = f"data: {record['source']} -> {record['train']['rows']:,} training rows ({record['shards']})"
    if holdout:
        where += (f"; validation: {holdout['held_out_documents']:,} documents held out by content "
                  f"hash ({holdout['fraction']:.2%}), never trained on")
    return where + f"; {record['validation']['rows_used']:,} validation rows used"


def run(cfg: DictConfig) -> dict:
    """Train per `cfg`; returns the final metrics (val_ppl, step, tokens, run_dir)."""
    if in_multirun():
        place_sweep_job(cfg)
    settings = validate(cfg)
    plan = plan_batch(settings)
    print(describe(settings, plan))
    if settings.dry_run:
        return {}
    with owned_run_dir(settings.run_dir) as run_dir:
        if finished(settings, config_hash(cfg), run_dir):
            print(f"{run_dir} already finished at step {settings.trainer.max_steps:,}: nothing to train")
            return report(run_dir, last_export(run_dir))
        return _train(settings, plan, run_dir, cfg)


def finished(cfg: TrainConfig, hashed: str, run_dir: Path) -> bool:
    """True when `resume=auto` finds this very run (the same config hash, `hashed`, as its last
    session saved) already trained to max_steps and exported: re-running a sweep then skips its
    finished jobs and continues the others. A changed setting (another corpus, more steps) is
    never skipped."""
    return (cfg.resume == "auto" and last_export(run_dir).get("step") == cfg.trainer.max_steps
            and saved_config_hash(run_dir) == hashed)


def _train(cfg: TrainConfig, plan, run_dir: Path, composed: DictConfig) -> dict:
    """Build and fit from the typed settings; `composed` (the config as Hydra composed it) is
    kept in the run directory and handed to the loggers."""
    ckpt_path = resume_checkpoint(cfg, run_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.hardware.tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tokenizer = prepare_tokenizer(cfg)
    attn = resolve_attn_implementation(cfg.hardware.attn_implementation, cfg.trainer.accelerator)
    module: CausalLMModule = instantiate(cfg.module)(
        config=llama_config(asdict(cfg.model), attn),
        optimizer_factory=instantiate(cfg.optimizer),
        scheduler_factory=build(cfg.scheduler, total_steps=cfg.trainer.max_steps) if cfg.scheduler else None,
        tokens_per_step=plan.tokens_per_step,
        mup=mup_of(cfg.model),
    )
    datamodule = TTLDataModule(cfg.data, tokenizer, plan.micro_batch_size)
    # Resolve the data now: a missing path or an offline Hub id fails before the run
    # directory gets a config, logs or checkpoints.
    datamodule.setup("fit")
    record = datamodule.describe()
    print(data_line(record))
    callbacks = build_callbacks(cfg.callbacks, run_dir=str(run_dir), spawned=spawned(cfg))
    exporter = callbacks.get("hf_checkpoint")  # by its config name; None when dropped
    if is_primary_process():
        save_config(composed, run_dir)
        # data.json: the data, the held-out rule and its counts, as this session saw them.
        write_json(run_dir / DATA_RECORD, record)
    try:
        trainer = pl.Trainer(
            **lightning_trainer_kwargs(cfg, plan),
            callbacks=list(callbacks.values()),
            logger=build_loggers(cfg.logger, run_dir, OmegaConf.to_container(composed, resolve=True),
                                 resume_step=wandb_step_in_checkpoint(ckpt_path, checkpoint_dir(run_dir)))
            or False,
            default_root_dir=str(run_dir),
            plugins=[RecordedCheckpointIO()],
        )
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except SIGTERMException as error:
            saved = callbacks["preemption"].saved_path if "preemption" in callbacks else None
            raise Preempted(trainer.global_step, saved) from error
        if spawned(cfg):
            if exporter:
                print(f"model card: {write_card(run_dir)}")
            return report(run_dir, last_export(run_dir))
        # The final weights get a validation of their own (unless the last interval was it),
        # then their Hugging Face export, which records that perplexity.
        if not module.val_history or module.val_history[-1][0] != trainer.global_step:
            trainer.validate(module, datamodule=datamodule, verbose=False)
        if exporter:
            exporter.export(trainer, module)
            if trainer.is_global_zero:
                print(f"model card: {write_card(run_dir)}")
    finally:
        finish_wandb()
    history = module.val_history
    return report(run_dir, {"val_ppl": history[-1][1] if history else None, "step": trainer.global_step,
                            "tokens": module.tokens_seen}, history)


def spawned(cfg: TrainConfig) -> bool:
    """True when Lightning trains in spawned processes (ddp_spawn, used inside sweeps)."""
    return cfg.trainer.strategy == "ddp_spawn"


def last_export(run_dir: Path) -> dict:
    """The trainer state of the run's last export ({} before any): the figures of a run trained
    elsewhere (a finished run, or ddp_spawn's processes)."""
    states = read_states(run_dir)
    return states[-1] if states else {}


def report(run_dir: Path, last: dict, history: list[tuple[int, float]] = ()) -> dict:
    """Print the validation perplexity history and the final figures; return them (val_ppl,
    step, tokens, run_dir)."""
    if history:
        print("validation perplexity: " + " -> ".join(f"{ppl:.2f} (step {step})" for step, ppl in history))
    if last.get("val_ppl") is not None:
        print(f"final validation perplexity: {last['val_ppl']:.2f}")
    print(f"run directory: {run_dir}")
    return {"val_ppl": last.get("val_ppl"), "step": last.get("step"), "tokens": last.get("tokens"),
            "run_dir": str(run_dir)}
