"""The settings of `python -m ttl.finetune`, each declared once with its type and default (the
classification recipe of TeenyTinyLlama's fine-tuned models), their checks and the batch split.
`FinetuneConfig` is the root; conf/finetune/finetune.yaml wires it to pre-training's groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from omegaconf import MISSING, DictConfig

from ttl.cli import require, schema, store, typed_settings
from ttl.errors import TTLError, check_positive
from ttl.train.config import PathsConfig, RunConfig
from ttl.train.plan import world_size
from ttl.train.sharding import FSDP

KINDS = ("classification", "sft")

# TeenyTinyLlama-460m-Chat's format: <s><instruction>{user}</instruction>{assistant}</s> per
# turn. Saved as tokenizer.chat_template; {% generation %} marks the tokens that carry the loss.
CHAT_TEMPLATE = """\
{{- bos_token -}}
{%- for message in messages -%}
  {%- if message['role'] == 'user' and loop.index0 % 2 == 0 -%}
    {{- '<instruction>' + (message['content'] | trim) + '</instruction>' -}}
  {%- elif message['role'] == 'assistant' and loop.index0 % 2 == 1 -%}
    {%- generation -%}{{- (message['content'] | trim) + eos_token -}}{%- endgeneration -%}
  {%- else -%}
    {{- raise_exception('turns must alternate user, assistant, user, ...; turn ' ~ loop.index
                        ~ ' is ' ~ message['role']) -}}
  {%- endif -%}
{%- endfor -%}"""


@dataclass
class TaskSettings:
    """What the task is: its name, its kind (classification or sft) and its labels in id order."""

    name: str = MISSING
    kind: str = "classification"
    labels: list[str] = field(default_factory=list)


@dataclass
class FinetuneData:
    """Where a task's examples are and how one becomes tokens."""

    # A local directory of <split>.jsonl files, a single .jsonl file, or null for data.hub_id.
    path: str | None = None
    hub_id: str | None = None
    hub_config: str | None = None
    # Hub column -> field name used by the template (the local files already use the field names).
    hub_columns: dict[str, str] = field(default_factory=dict)
    # The Hub dataset's split for each role (a local directory holds train.jsonl, validation.jsonl,
    # test.jsonl). No validation split (null, or no validation.jsonl) = every k-th training
    # example is held out for it, k = round(1 / val_fraction): selection never looks at test.
    hub_splits: dict[str, str | None] = field(default_factory=lambda: {
        "train": "train", "validation": "validation", "test": "test"})
    val_fraction: float = 0.1
    # Inputs longer than this (in tokens) are truncated at the end, as the original did.
    max_length: int = 256
    # Subsets for quick runs: a seeded random sample of N training / N validation-and-test examples.
    limit_train: int | None = None
    limit_eval: int | None = None
    num_workers: int = 0
    # Classification: a Python format string over the row's fields (its literal special tokens
    # are the tokenizer's), and the field holding the label.
    template: str | None = None
    label_field: str = "label"
    # Instruction tuning: the field holding each conversation's messages, and whether each
    # micro-batch is one row of concatenated conversations (per-conversation position ids and
    # attention, no padding: the same loss for less compute).
    messages_field: str = "conversations"
    packing: bool = False


@dataclass
class ChatSettings:
    """Instruction tuning's chat format (TeenyTinyLlama-460m-Chat's)."""

    # Added to the vocabulary as special tokens when the checkpoint's tokenizer lacks them.
    added_tokens: list[str] = field(default_factory=lambda: ["<instruction>", "</instruction>"])
    template: str = CHAT_TEMPLATE


@dataclass
class RecipeSettings:
    """How to train; the defaults are the original recipe of every TeenyTinyLlama classifier."""

    lr: float = 4.0e-5
    weight_decay: float = 0.01
    # Examples per optimizer step over all devices; the micro-batch is hardware.micro_batch_size
    # (null = the whole batch on each device) and gradient accumulation makes up the rest.
    batch_size: int = 16
    epochs: int = 3
    # A transformers schedule name (the Trainer's own): linear, cosine, constant, ...
    schedule: str = "linear"
    warmup_steps: int = 0


@dataclass
class SelectionSettings:
    """Which validation metric selects the epoch kept and exported (never a test metric)."""

    monitor: str = "val/macro_f1"
    mode: str = "max"
    # Keep checkpoints/best-*.ckpt (Lightning, weights only) after the Hugging Face export.
    keep_checkpoint: bool = False


@dataclass
class FinetunePaths(PathsConfig):
    """Pre-training's paths, and the labelled Portuguese tasks' local copies."""

    # hatebr/, assin2/, faquad_nli/ with train/validation/test.jsonl.
    tasks_dir: str = "${oc.env:TTL_TASKS_DIR,../shared/data/tasks}"


def _get_scheduler_schema() -> type:
    from transformers import get_scheduler

    return schema(get_scheduler, partial=True, exclude=("optimizer", "num_training_steps",
                                                        "scheduler_specific_kwargs"))


@dataclass
class FinetuneConfig(RunConfig):
    """The root of `python -m ttl.finetune task=<name> checkpoint=<dir or Hub id>`."""

    run_name: str = "finetune-${task.name}"
    # A step-<N>/ export of `python -m ttl.train` (or any Llama directory or Hub id with a tokenizer).
    checkpoint: str = MISSING
    # The tokenizer to use; null = the checkpoint's own.
    tokenizer: str | None = None
    paths: FinetunePaths = field(default_factory=FinetunePaths)
    task: TaskSettings = field(default_factory=TaskSettings)
    data: FinetuneData = field(default_factory=FinetuneData)
    chat: ChatSettings = field(default_factory=ChatSettings)
    recipe: RecipeSettings = field(default_factory=RecipeSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    # transformers' schedules (the Trainer's own); the step count is known only once the data is.
    scheduler: Any = field(default_factory=_get_scheduler_schema)

    def validate(self) -> None:
        """What types cannot say; a TTLError names the key at fault."""
        if self.task.kind not in KINDS:
            raise TTLError(f"task.kind={self.task.kind!r}: choose one of {', '.join(KINDS)}")
        check_positive("recipe.", batch_size=self.recipe.batch_size, epochs=self.recipe.epochs)
        check_positive("data.", limit_train=self.data.limit_train, limit_eval=self.data.limit_eval)
        if self.data.max_length < 4:
            raise TTLError(f"data.max_length={self.data.max_length}: must be at least 4")
        if self.recipe.lr <= 0 or self.recipe.weight_decay < 0 or self.recipe.warmup_steps < 0:
            raise TTLError("recipe.lr must be positive, recipe.weight_decay and recipe.warmup_steps "
                           "at least 0")
        if not 0 < self.data.val_fraction < 1:
            raise TTLError(f"data.val_fraction={self.data.val_fraction}: must be strictly between 0 and 1")
        if self.trainer.strategy == FSDP:
            raise TTLError("trainer.strategy=fsdp shards pre-training (ttl.train) only; fine-tune "
                           "on one device or with trainer.strategy=ddp")
        if self.selection.mode not in ("min", "max"):
            raise TTLError(f"selection.mode={self.selection.mode!r}: choose min or max")
        if self.task.kind == "classification" and len(self.task.labels) < 2:
            raise TTLError(f"task.labels={list(self.task.labels)}: a classification task needs two or more")
        if self.task.kind == "classification" and not self.data.template:
            raise TTLError("data.template is required for a classification task "
                           "(e.g. data.template='<s>{text}')")
        self.hardware.validate()


store(FinetuneConfig, "finetune_schema")


def validate(cfg: DictConfig) -> FinetuneConfig:
    """Every key set, then `FinetuneConfig.validate()`: the typed settings the run reads."""
    require(cfg, "checkpoint", "python -m ttl.finetune task=<name> checkpoint=runs/<run>/step-<N>")
    return typed_settings(cfg, FinetuneConfig, ("optimizer", "scheduler", "logger", "callbacks"))


def batch_split(cfg: FinetuneConfig) -> tuple[int, int]:
    """(micro-batch per device, gradient accumulation) for `recipe.batch_size` examples per step."""
    size, world = cfg.recipe.batch_size, world_size(cfg.trainer)
    micro = cfg.hardware.micro_batch_size
    if micro is None:
        if size % world:
            raise TTLError(f"recipe.batch_size={size} does not divide over {world} device(s)")
        micro = size // world
    if size % (micro * world):
        raise TTLError(f"recipe.batch_size={size} does not divide into hardware.micro_batch_size={micro} "
                       f"x {world} device(s)")
    return micro, size // (micro * world)


def available_tasks() -> list[str]:
    """Names of the task configs shipped in conf/finetune/task/."""
    folder = resources.files("ttl.conf.finetune") / "task"
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def check_task_argument(args: list[str]) -> None:
    """Refuse a missing or unknown `task=` before Hydra (whose message spans several lines)."""
    tasks = available_tasks()
    values = [arg.split("=", 1)[1] for arg in args if arg.startswith("task=")]
    if not values:
        if any(arg.startswith("--") for arg in args):  # --help, --cfg job, ...: Hydra's business
            return
        raise TTLError(f"task is required: python -m ttl.finetune task=<{'|'.join(tasks)}> checkpoint=DIR")
    for name in values[-1].split(","):  # a sweep lists several: task=hatebr,assin2
        if name not in tasks:
            raise TTLError(f"task={name}: unknown task; choose one of {', '.join(tasks)}")
