"""The settings of `python -m ttl.train`, each declared once, with its type and default.

`TrainConfig` is the root: the run's own keys and the groups that are plain settings. The groups
that name a `_target_` are declared by that component's signature (`ttl.cli.schema`). All are
registered in Hydra's ConfigStore on import; conf/'s YAML files extend them with only what
differs. The defaults are TeenyTinyLlama-160m's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from ttl.cli import schema, store
from ttl.data.config import DataSettings
from ttl.errors import TTLError, check_positive
from ttl.train import loggers, optim
from ttl.train.callbacks.emissions import EmissionsMonitor
from ttl.train.callbacks.hf_checkpoint import HFCheckpoint
from ttl.train.callbacks.progress_bar import StepProgressBar
from ttl.train.callbacks.resume import PreemptionCheckpoint, ResumeCheckpoint
from ttl.train.callbacks.samples import SampleGenerations
from ttl.train.callbacks.throughput import ThroughputMonitor
from ttl.train.callbacks.wandb_step import WandbStep
from ttl.train.module import CausalLMModule
from ttl.train.parametrization import check_untied, width_multiplier


@dataclass
class RecipeConfig:
    """What a model size's recipe sets (other groups interpolate these): TeenyTinyLlama-160m's
    (the paper's Table 3)."""

    lr: float = 6.0e-4
    warmup_steps: int = 5000
    max_steps: int = 458_000
    tokens_per_step: int = 8192
    checkpoint_every_n_steps: int = 22_000
    # The original validated every 100,000 steps, out of step with its checkpoints; ttl
    # validates at every checkpoint, so each export carries the perplexity of its own weights.
    eval_every_n_steps: int = 22_000
    # What chose this recipe and what it gained, for the model card (null: the published recipe).
    evidence: str | None = None

    def validate(self) -> None:
        """Steps, tokens and intervals are positive; the learning rate too."""
        check_positive("model.recipe.", max_steps=self.max_steps, tokens_per_step=self.tokens_per_step,
                       checkpoint_every_n_steps=self.checkpoint_every_n_steps,
                       eval_every_n_steps=self.eval_every_n_steps)
        if self.lr <= 0 or self.warmup_steps < 0:
            raise TTLError(f"model.recipe.lr={self.lr}, warmup_steps={self.warmup_steps}: the learning "
                           "rate must be positive and the warmup at least 0")


@dataclass
class ModelConfig:
    """A Llama's architecture (`LlamaConfig`'s keys) and its recipe: TeenyTinyLlama-160m, exactly
    162,417,408 parameters with untied embeddings."""

    name: str = "160m"
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    # null: as many as attention heads (no grouped-query attention, as TeenyTinyLlama).
    num_key_value_heads: int | None = None
    intermediate_size: int = 3072
    vocab_size: int = 32000
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1.0e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    # standard, or mup (recipe_switch=mup): initialisation and per-group learning rates scale with
    # hidden_size / base_width (ttl.train.parametrization); at the 160m's width µP changes nothing.
    parametrization: str = "standard"
    base_width: int = 768
    # µP's (TP5's) input and output multipliers: the embedding's init and lr are input x the
    # published, the head's output / m, at every width (ttl.train.parametrization).
    input_multiplier: float = 1.0
    output_multiplier: float = 1.0
    recipe: RecipeConfig = field(default_factory=RecipeConfig)

    def validate(self) -> None:
        """Positive sizes, heads that divide the width, and the recipe's own checks."""
        check_positive("model.", hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                       num_attention_heads=self.num_attention_heads, vocab_size=self.vocab_size,
                       max_position_embeddings=self.max_position_embeddings)
        if self.hidden_size % self.num_attention_heads:
            raise TTLError(f"model.hidden_size={self.hidden_size} is not divisible by "
                           f"model.num_attention_heads={self.num_attention_heads}")
        width_multiplier(self.parametrization, self.hidden_size, self.base_width)
        if self.parametrization == "mup":
            check_untied(self)
        for key in ("input_multiplier", "output_multiplier"):
            value = getattr(self, key)
            if value <= 0 or (value != 1 and self.parametrization != "mup"):
                raise TTLError(f"model.{key}={value}: a positive number, and under µP only "
                               "(recipe_switch=mup)")
        self.recipe.validate()


@dataclass
class TokenizerTraining:
    """Train the run's tokenizer first when `tokenizer.path` does not exist yet."""

    data_path: str = MISSING
    vocab_size: int = MISSING


@dataclass
class TokenizerConfig:
    """Which tokenizer a run uses: a directory or Hub id (TeenyTinyLlama's by default), trained
    on the training side of `train_if_missing.data_path` when set and missing."""

    path: str = "nicholasKluge/TeenyTinyLlama-160m"
    train_if_missing: TokenizerTraining | None = None


@dataclass
class TrainerConfig:
    """Lightning Trainer arguments (the hardware: accelerator, devices, precision; and the
    loop), on one CPU by default. Gradient accumulation is derived from the batch in tokens."""

    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    # ttl's `fsdp` is FSDP2 through Lightning's ModelParallelStrategy (ttl.train.sharding).
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: int = -1
    max_epochs: int | None = None
    check_val_every_n_epoch: int | None = 1
    limit_val_batches: Any = None
    log_every_n_steps: int = 50
    num_sanity_val_steps: int = 0
    gradient_clip_val: float | None = None
    deterministic: bool = False
    enable_model_summary: bool = False


@dataclass
class HardwareConfig:
    """ttl's own hardware settings (not Lightning arguments)."""

    # Sequences per device and pass; null: micro_batch_by_model's entry for the model, capped
    # at the sequences each device gets per optimizer step.
    micro_batch_size: int | None = None
    # What fits one device (fp32 on CPU, bf16 on a 40 GB A100); a hardware config lists only
    # the models it changes.
    micro_batch_by_model: dict[str, int] = field(default_factory=lambda: {
        "tiny": 32, "study": 16, "study-4x": 16, "proxy-64": 16, "proxy-128": 16, "proxy-256": 16,
        "proxy-512": 16, "160m": 4, "460m": 2})
    # sdpa (PyTorch's), flash_attention_2 (pip install -e ".[gpu]"), eager, or auto: flash
    # attention 2 when flash-attn is installed, else sdpa.
    attn_implementation: str = "sdpa"
    compile: bool = False
    # torch.compile mode (null = default; measured in experiments/bench_gpu).
    compile_mode: str | None = None
    # Loss: hf (Hugging Face's, over the full fp32 logits) or chunked (ttl.train.losses: equal,
    # without materialising them; measured in experiments/bench_gpu).
    loss_impl: str = "hf"
    tf32: bool = False

    def validate(self) -> None:
        """A micro-batch is positive; the loss implementation is one ttl has."""
        from ttl.train.losses import LOSS_IMPLEMENTATIONS

        check_positive("hardware.", micro_batch_size=self.micro_batch_size)
        if self.loss_impl not in LOSS_IMPLEMENTATIONS:
            raise TTLError(f"hardware.loss_impl={self.loss_impl!r}: choose one of "
                           f"{', '.join(LOSS_IMPLEMENTATIONS)}")


@dataclass
class PathsConfig:
    """Where runs and caches go (relative paths are relative to the working directory)."""

    runs_dir: str = "${oc.env:TTL_RUNS_DIR,runs}"
    cache_dir: str = "${oc.env:TTL_CACHE_DIR,${oc.env:HOME,.}/.cache/ttl}"


@dataclass
class RunConfig:
    """What every training command's root shares (`python -m ttl.train`, `python -m ttl.finetune`):
    the run directory, the seed, the Lightning Trainer, the hardware, the optimizer, the loggers
    and the callbacks."""

    # The run directory is ${paths.runs_dir}/${run_name}; re-running the same command finds
    # the same directory and resumes it.
    run_name: str = MISSING
    run_dir: str = "${paths.runs_dir}/${run_name}"
    seed: int = 42
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    # Groups whose options name a `_target_` (declared by its signature).
    optimizer: Any = MISSING
    logger: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig(RunConfig):
    """The root of `python -m ttl.train`: the run, and one node per config group."""

    run_name: str = "ttl-${model.name}"
    # Print the plan (parameters, batch arithmetic, tokens, FLOPs) and exit without training.
    dry_run: bool = False
    # auto: resume from the run's newest readable checkpoint; never: refuse a directory that
    # already holds a run; or a path to a .ckpt file.
    resume: str = "auto"
    # Set by hparams_search configs: the returned figure an Optuna sweep minimises (val_ppl).
    optimized_metric: str | None = None
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataSettings = field(default_factory=DataSettings)
    module: Any = MISSING
    scheduler: Any = None

    def validate(self) -> None:
        """Each group's checks, then those across groups."""
        self.model.validate()
        self.data.validate()
        self.hardware.validate()
        if self.trainer.max_steps < 1:
            raise TTLError(f"trainer.max_steps={self.trainer.max_steps}: must be at least 1 (the schedule "
                           "ends there; set model.recipe.max_steps or trainer.max_steps)")
        if self.seed < 0:
            raise TTLError(f"seed={self.seed}: must be at least 0")
        if self.data.seq_len > self.model.max_position_embeddings:
            raise TTLError(f"data.seq_len={self.data.seq_len} exceeds the model's context "
                           f"model.max_position_embeddings={self.model.max_position_embeddings}")
        if self.resume not in ("auto", "never") and not self.resume.endswith(".ckpt"):
            raise TTLError(f"resume={self.resume!r}: use auto, never, or a path to a .ckpt file")


def register() -> None:
    """Put every schema of the train config into Hydra's ConfigStore (done on import)."""
    store(TrainConfig, "train_schema")
    # Each group's options, and the arguments its builder hands (ttl.cli.build; never copied into
    # a node): the model, the run directory, the run's step count, the loggers' hyperparameters...
    for group, partial, exclude, options in (
        ("module", True, ("config", "optimizer_factory", "scheduler_factory", "tokens_per_step",
                          "mup"), {"causal_lm": CausalLMModule}),
        ("optimizer", True, ("model", "mup"), {"adamw": optim.build_adamw, "muon": optim.build_muon}),
        ("scheduler", True, ("optimizer", "total_steps"), {"cosine": optim.warmup_cosine,
         "constant": optim.warmup_constant, "wsd": optim.warmup_stable_decay}),
        ("callbacks", False, ("tokenizer", "run_dir", "spawned", "emissions"),
         {"hf_checkpoint": HFCheckpoint, "resume_checkpoint": ResumeCheckpoint,
          "preemption": PreemptionCheckpoint, "emissions": EmissionsMonitor, "throughput": ThroughputMonitor,
          "wandb_step": WandbStep, "samples": SampleGenerations, "progress_bar": StepProgressBar}),
        ("logger", False, ("hparams", "resume_step", "run_dir"),
         {"wandb": loggers.wandb_logger, "csv": loggers.csv_logger}),
    ):
        for name, target in options.items():
            store(schema(target, partial=partial, exclude=exclude), f"{name}_schema", group=group)


register()


def model_preset(name: str) -> dict[str, Any]:
    """conf/model/<name>.yaml over `ModelConfig`'s defaults, as a plain dict: the architecture a
    run with `model=<name>` gets, for scripts and notebooks that build a model without
    composing a whole run."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    path = files("ttl.conf") / "model" / f"{name}.yaml"
    if not path.is_file():
        raise TTLError(f"model={name}: no such file {path}")
    merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(str(path)))
    return OmegaConf.to_container(merged)
