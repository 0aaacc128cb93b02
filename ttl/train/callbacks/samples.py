"""`SampleGenerations`: a W&B table of generations from fixed Portuguese prompts at checkpoints,
with the TeenyTinyLlama model card's sampling settings: what the model can write at each point."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger

from ttl.generate import generate_samples
from ttl.train.sharding import is_sharded, unsharded_copy

PROMPTS = (
    "A capital do Brasil é",
    "Era uma vez, em uma pequena cidade do interior,",
    "Para fazer um bolo de cenoura, você precisa de",
    "O Cerrado é um bioma",
)


class SampleGenerations(pl.Callback):
    """Log a `samples` table (step, tokens, prompt, generation) to W&B every n steps and at the end."""

    def __init__(self, every_n_steps: int, prompts: list[str] | None = None,
                 max_new_tokens: int = 150) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.prompts = tuple(prompts) if prompts else PROMPTS
        self.max_new_tokens = max_new_tokens
        self.tokenizer = None  # the DataModule's, taken in setup
        self._rows: list[list] = []
        self._last_step = -1

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Sample with the run's own tokenizer (the DataModule's)."""
        if self.tokenizer is None:
            self.tokenizer = getattr(trainer.datamodule, "tokenizer", None)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Sample when an optimizer step lands on the interval."""
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.log_samples(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Sample the final weights."""
        if trainer.global_step != self._last_step:
            self.log_samples(trainer, pl_module)

    def log_samples(self, trainer: pl.Trainer, pl_module) -> None:
        """Generate and log the cumulative table (W&B tables are immutable: log all rows). Every
        rank calls it: under FSDP the weights are gathered onto rank 0, which alone generates."""
        self._last_step = trainer.global_step
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or self.tokenizer is None:
            return
        model = unsharded_copy(pl_module.model) if is_sharded(pl_module.model) else pl_module.model
        if not trainer.is_global_zero:
            return
        import wandb

        texts = generate_samples(model.to(pl_module.device), self.tokenizer, self.prompts,
                                 max_new_tokens=self.max_new_tokens)
        for prompt, text in zip(self.prompts, texts, strict=True):
            self._rows.append([trainer.global_step, pl_module.tokens_seen, prompt, text])
        table = wandb.Table(columns=["step", "tokens", "prompt", "generation"], data=self._rows)
        loggers[0].experiment.log({"samples": table, "progress/tokens": pl_module.tokens_seen})
