"""`CausalLMModule`: the LightningModule that trains a Hugging Face `LlamaForCausalLM`."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning.pytorch as pl
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ttl.errors import TTLError
from ttl.lightning_api import ends_optimizer_step, is_logging_step
from ttl.model import build_model
from ttl.train.losses import causal_lm_loss, z_loss_term
from ttl.train.parametrization import Mup
from ttl.train.sharding import describe_sharding, is_sharded, number_params_in_model_order, shard_model


class CausalLMModule(pl.LightningModule):
    """Next-token prediction on packed blocks; logs loss, perplexity, learning rate and tokens
    (docs/configuration.md says what each metric averages; `train/lr` is the first group's rate).

    Why not the kept libraries (torchmetrics 1.9, Lightning 2.6): `MeanMetric` checks every
    update for NaN on the host (a GPU sync per micro-batch), and with `nan_strategy="disable"`
    drops the weights; so the sums stay on the device, reduced over ranks at logging steps only.
    `LearningRateMonitor` logs once per micro-batch under accumulation, without the
    `progress/tokens` x-axis.
    """

    def __init__(
        self,
        config: LlamaConfig,
        optimizer_factory: Callable,
        scheduler_factory: Callable | None,
        tokens_per_step: int,
        compile_model: bool = False,
        nonfinite_loss: str = "stop",
        compile_mode: str | None = None,
        loss_impl: str = "hf",
        z_loss: float = 0.0,
        zero_init_output: bool = False,
        zero_init_head: bool = False,
        mup: Mup | None = None,
    ) -> None:
        super().__init__()
        if nonfinite_loss not in ("stop", "skip"):
            raise TTLError(f"module.nonfinite_loss={nonfinite_loss!r}: choose stop or skip")
        self.loss_impl = loss_impl
        if isinstance(z_loss, bool) or not isinstance(z_loss, int | float) or z_loss < 0:
            raise TTLError(f"module.z_loss={z_loss!r}: expected a number >= 0 (PaLM used 1e-4)")
        self.z_loss = float(z_loss)
        self._chunked_loss = causal_lm_loss
        self.nonfinite_loss = nonfinite_loss
        # (host flag, CUDA event or None, step) of the last loss not yet checked for NaN/Inf.
        self._pending_check: tuple | None = None
        self.skipped_batches = 0
        self.model: LlamaForCausalLM = build_model(config)
        self.mup = mup  # µP at this width (ttl.train.parametrization); None: standard
        if mup is not None:
            mup.initialise(self.model)
        if zero_init_output:
            # Each block starts as the identity (modded-nanogpt): zero what writes into the residual.
            for layer in self.model.model.layers:
                torch.nn.init.zeros_(layer.self_attn.o_proj.weight)
                torch.nn.init.zeros_(layer.mlp.down_proj.weight)
        if zero_init_head:
            if config.tie_word_embeddings:
                raise TTLError("module.zero_init_head=true with model.tie_word_embeddings=true would zero "
                               "the input embedding too: untie them or leave the head's init as is")
            # The initial logits are 0 at every width (mup's readout_zero_init): µP's head init
            # σ/m otherwise leaves a width-dependent initial-logit term in narrow proxies.
            torch.nn.init.zeros_(self.model.lm_head.weight)
        self.optimizer_factory = optimizer_factory
        self.scheduler_factory = scheduler_factory
        self.tokens_per_step = tokens_per_step
        self.compile_model = compile_model
        self.compile_mode = compile_mode
        # Token-weighted loss of the optimizer step in progress (its micro-batches so far), and
        # how many of its micro-batches ran and were skipped (module.nonfinite_loss=skip).
        self._step_loss_sum = torch.zeros((), dtype=torch.float64)
        self._step_tokens = torch.zeros((), dtype=torch.long)
        self._step_micro_batches = 0
        self._step_skipped = 0
        # (step, perplexity) of every validation in this session, for the end-of-run report.
        self.val_history: list[tuple[int, float]] = []

    def configure_model(self) -> None:
        """Shard under FSDP2 (`trainer=fsdp`), then compile in place (plain parameter names in
        checkpoints, no `_orig_mod.`). Idempotent: Lightning calls it again for `validate`."""
        if getattr(self, "_configured", False):
            return
        self._configured = True
        mesh = self.device_mesh  # set by ModelParallelStrategy (trainer=fsdp), else None
        if mesh is not None:
            if self.loss_impl == "chunked":
                # FSDP gathers the output head's weight only inside the head's own forward.
                raise TTLError("hardware.loss_impl=chunked reads the output head's weight directly, which "
                               "FSDP keeps sharded: use hardware.loss_impl=hf with trainer=fsdp")
            # Data parallelism only: the 1-D data-parallel mesh shards; the 2-D mesh would
            # silently replicate instead.
            shard_model(self.model, mesh["data_parallel"], compile_layers=self.compile_model,
                        compile_mode=self.compile_mode)
            print(describe_sharding(self.model))
        elif self.compile_model:
            self.model.compile(mode=self.compile_mode)
            if self.loss_impl == "chunked":
                # The chunked loss calls the decoder stack and the head itself, outside the
                # compiled LlamaForCausalLM.forward: compile the whole loss function instead.
                self._chunked_loss = torch.compile(causal_lm_loss, mode=self.compile_mode)

    @property
    def tokens_seen(self) -> int:
        """Training tokens consumed so far over all devices (optimizer steps x tokens/step)."""
        return self.global_step * self.tokens_per_step

    def forward(self, batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean next-token cross-entropy of a batch of blocks: a (B, T) tensor of token ids, or a
        dict with `input_ids` and optionally `position_ids`, `attention_mask` and `labels` (-100
        where no loss is wanted; the input ids by default)."""
        inputs = {"input_ids": batch} if isinstance(batch, torch.Tensor) else dict(batch)
        inputs.setdefault("labels", inputs["input_ids"])
        if self.loss_impl == "chunked":
            return self._chunked_loss(self.model, inputs, z_loss=self.z_loss)
        outputs = self.model(**inputs)
        if not self.z_loss:
            return outputs.loss
        return outputs.loss + self.z_loss * z_loss_term(outputs.logits, inputs["labels"])

    @staticmethod
    def _predicted_tokens(batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | int:
        """Number of tokens that carry a loss (the shift drops the first position)."""
        if isinstance(batch, torch.Tensor):
            return batch[:, 1:].numel()
        labels = batch.get("labels", batch["input_ids"])
        return (labels[:, 1:] != -100).sum()

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        """One micro-batch; the loss of an optimizer step is logged when its last micro-batch
        ends. Accumulating stays on the device (no host synchronisation per step)."""
        loss = self(batch)
        detached = loss.detach()
        self._step_micro_batches += 1
        if self.nonfinite_loss == "skip":
            # Skipping must decide before backward: a host sync per step is its price. Under
            # DDP/FSDP every rank must skip together, or the others would wait forever in the
            # gradient all-reduce: the decision is collective.
            finite = bool(torch.isfinite(detached))
            if self.trainer.world_size > 1:
                finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
            if not finite:
                self.skipped_batches += 1
                self._step_skipped += 1
                print(f"warning: non-finite loss at step {self.global_step} on at least one rank, "
                      f"batch skipped on every rank ({self.skipped_batches} so far)")
                self._end_of_step_logging()
                if self.trainer.world_size == 1:
                    return None
                # Lightning refuses None with several processes: a loss whose gradient is zero
                # for every parameter keeps the gradient all-reduce of every rank in step.
                return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        else:
            self._watch_finite(detached)
        tokens = self._predicted_tokens(batch)
        self._step_loss_sum = self._step_loss_sum.to(detached.device) + detached.double() * tokens
        self._step_tokens = self._step_tokens.to(detached.device) + tokens
        self._end_of_step_logging()
        return loss

    def _end_of_step_logging(self) -> None:
        """At the last micro-batch of an optimizer step: log train/loss, the token-weighted mean
        over all of the step's micro-batches on every rank (the original logged a sum)."""
        if not ends_optimizer_step(self.trainer):
            return
        loss_sum, tokens = self._step_loss_sum, self._step_tokens
        self._step_loss_sum = torch.zeros((), dtype=torch.float64)
        self._step_tokens = torch.zeros((), dtype=torch.long)
        # Lightning hands on_step values to the loggers at logging steps only; reduce over
        # ranks (a collective, taken by every rank alike) only then.
        if not is_logging_step(self.trainer):
            return
        if self.trainer.world_size > 1:
            totals = self.trainer.strategy.reduce(torch.stack([loss_sum, tokens.double()]).to(self.device),
                                                  reduce_op="sum")
            loss_sum, tokens = totals[0], totals[1]
        if float(tokens) == 0:  # every micro-batch of the step was skipped
            return
        mean = (loss_sum / tokens).float()
        self.log("train/loss", mean, prog_bar=True, sync_dist=False)
        self.log("train/ppl", torch.exp(mean), prog_bar=True, sync_dist=False)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Note the rate this step trains at for train/lr (the scheduler moves on before
        on_train_batch_end). A step whose every micro-batch was skipped updates nothing: with no
        gradients AdamW leaves weights and moments alone, as on one process."""
        self._step_lr = optimizer.param_groups[0]["lr"]
        if self._step_skipped and self._step_skipped == self._step_micro_batches:
            for parameter in self.model.parameters():
                parameter.grad = None
        self._step_micro_batches = self._step_skipped = 0

    def _watch_finite(self, loss: torch.Tensor) -> None:
        """Check the loss for NaN/Inf without stalling the GPU: at once on CPU; on GPU the flag is
        copied to the host asynchronously and read one step later (checkpoints call
        `check_finite` first, so none ever holds the damage)."""
        if not loss.is_cuda:
            self._pending_check = (torch.isfinite(loss), None, self.global_step)
            self.check_finite()
            return
        self.check_finite()
        host = torch.empty((), dtype=torch.bool, pin_memory=True)
        host.copy_(torch.isfinite(loss), non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending_check = (host, event, self.global_step)

    def check_finite(self) -> None:
        """Raise TTLError if the last watched loss was NaN or Inf (stops the run)."""
        if self._pending_check is None:
            return
        flag, event, step = self._pending_check
        if event is not None:
            event.synchronize()
        self._pending_check = None
        if not bool(flag):
            raise TTLError(f"non-finite loss (NaN or Inf) at step {step}: training stopped; the checkpoints "
                           "written before it are intact (module.nonfinite_loss=skip skips such batches "
                           "instead)")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Never write a checkpoint after a non-finite loss; number optimizer state in model order
        as FSDP does, so any run can resume under any strategy."""
        self.check_finite()
        if is_sharded(self.model) or not checkpoint.get("optimizer_states"):
            return
        optimizers = self.trainer.strategy.optimizers
        checkpoint["optimizer_states"] = [
            number_params_in_model_order(state, optimizer, self)
            for state, optimizer in zip(checkpoint["optimizer_states"], optimizers, strict=True)
        ]

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Log learning rate and tokens seen on logging steps only (a logged float becomes a device
        tensor, whose copy waits for the GPU queue: every step would stall the pipeline)."""
        if not is_logging_step(self.trainer):
            return
        if self.lr_schedulers() is not None and ends_optimizer_step(self.trainer):
            self.log("train/lr", self._step_lr)
        self.log("progress/tokens", float(self.tokens_seen))

    def on_train_epoch_start(self) -> None:
        """Tell the training stream which epoch starts (its order depends on it)."""
        dataset = getattr(getattr(self.trainer, "datamodule", None), "train_dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        """Reset the token-weighted accumulators."""
        self._val_loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        self._val_tokens = torch.zeros((), device=self.device, dtype=torch.long)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Accumulate summed token losses and token counts."""
        tokens = self._predicted_tokens(batch)
        loss = self(batch).double()
        if isinstance(tokens, torch.Tensor):
            # A batch without labels (padding a rank, see ValidationBatches) has a NaN mean.
            loss = torch.where(tokens > 0, loss, torch.zeros_like(loss))
        self._val_loss_sum += loss * tokens
        self._val_tokens += tokens

    def on_validation_epoch_end(self) -> None:
        """Log val/loss and val/ppl over every validation token (summed over ranks)."""
        total = self.all_gather(self._val_loss_sum).sum()
        count = self.all_gather(self._val_tokens).sum()
        if int(count) == 0:
            return
        mean = float(total / count)
        self.log("val/loss", mean, prog_bar=True, sync_dist=False, rank_zero_only=True)
        self.log("val/ppl", math.exp(mean), prog_bar=True, sync_dist=False, rank_zero_only=True)
        # The x-axis of validation curves: W&B plots val/* against progress/tokens.
        self.log("progress/tokens", float(self.tokens_seen), rank_zero_only=True)
        if not self.trainer.sanity_checking:
            self.val_history.append((self.global_step, math.exp(mean)))

    def configure_optimizers(self):
        """The optimizer (handed `mup` under µP only: any callable(model) is a factory) and a scheduler."""
        optimizer = self.optimizer_factory(self.model, **({} if self.mup is None else {"mup": self.mup}))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
