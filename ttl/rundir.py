"""The run directory, with one owner: its layout, how it is written, and how it is read back.

    RUN_DIR/
      config.yaml, configs/session-<k>.yaml   each session's resolved config (save_config)
      data.json                    what the run trains and validates on (source, held-out rule)
      step-<N>/                    Hugging Face exports (step_dirs), with trainer_state.json
                                   (read_trainer_state) and README.md, the model card (ttl.card)
      checkpoints/                 Lightning .ckpt files for resume (latest_good_checkpoint),
                                   each with its record step-<N>.ckpt.json; wandb_steps.json
      logs/version_<k>/metrics.csv the CSV logger's rows, one version per session
      emissions.csv, emissions-node<k>.csv   codecarbon's rows, one file per machine
      wandb/, evaluation/          W&B's offline runs; python -m ttl.evaluate's results
      .lock                        held by the process that trains in it (RunLock)

Every file here is written whole or not at all (a temporary sibling, then an atomic rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import filelock

from ttl.errors import TTLError

CONFIG = "config.yaml"
SESSION_CONFIGS = "configs"
DATA_RECORD = "data.json"
TRAINER_STATE = "trainer_state.json"
LOGS = "logs"
# What `python -m ttl.evaluate` writes about a run: evaluation.csv (perplexity per export) and
# harness-step-<N>.json, harness.csv, card.md (lm-eval scores).
EVALUATION = "evaluation"
EVALUATION_CSV = "evaluation.csv"
# W&B's step counter at each checkpoint (ttl.train.callbacks.wandb_step), beside the checkpoints.
WANDB_STEPS = "wandb_steps.json"
STEP_DIR = re.compile(r"^step-(\d+)$")


def looks_like_hub_id(value: str) -> bool:
    """`owner/name` (a Hugging Face Hub id), not a local path."""
    return (value.count("/") == 1 and not value.startswith((".", "/", "~"))
            and all(value.split("/")))


# -- writing -------------------------------------------------------------------------------

def write_json(path: Path, data) -> Path:
    """Write `data` as indented JSON to `path` atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def write_dir(final: Path, fill: Callable[[Path], None]) -> Path:
    """Create directory `final` whole: `fill(tmp)` writes a temporary sibling, then it is renamed
    into place (replacing an older `final`). An interrupted write leaves `final` as it was."""
    final = Path(final)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fill(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def remove_stale_temporaries(directory: Path) -> None:
    """Remove what interrupted `write_dir` calls left in `directory`."""
    for stale in Path(directory).glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def checkpoint_dir(run_dir: str | Path) -> Path:
    """Where the run's Lightning .ckpt files go."""
    return Path(run_dir) / "checkpoints"


def evaluation_dir(run_dir: str | Path) -> Path:
    """Where `python -m ttl.evaluate` writes a run's results by default."""
    return Path(run_dir) / EVALUATION


def harness_results_file(run_dir: str | Path, step: int) -> Path:
    """lm-eval's results for the run's export at `step` (`python -m ttl.evaluate harness`)."""
    return evaluation_dir(run_dir) / f"harness-{step_dir_name(step)}.json"


def emissions_file(node_rank: int) -> str:
    """The codecarbon CSV machine `node_rank` writes into the run directory: one file per
    machine, so that machines sharing the directory never write one file at once."""
    return "emissions.csv" if node_rank == 0 else f"emissions-node{node_rank}.csv"


# -- step exports ------------------------------------------------------------------------

def step_dir_name(step: int) -> str:
    """Directory name of the export at optimizer step `step`."""
    return f"step-{step}"


def step_of(path: Path) -> int | None:
    """The step of a `step-<N>` directory name, else None."""
    match = STEP_DIR.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_export_dir(path: Path) -> bool:
    """A directory `from_pretrained` can load (it holds a config.json)."""
    return (Path(path) / "config.json").is_file()


def step_dirs(run_dir: str | Path) -> list[Path]:
    """The run's `step-<N>/` exports, sorted by N (numerically, not by name)."""
    found = [p for p in Path(run_dir).glob("step-*") if step_of(p) is not None and is_export_dir(p)]
    return sorted(found, key=step_of)


def read_trainer_state(directory: str | Path) -> dict:
    """An export's trainer_state.json ({} when absent), naming the file when it is damaged."""
    path = Path(directory) / TRAINER_STATE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise TTLError(f"{path}: not valid JSON ({error})") from error


def read_states(run_dir: str | Path) -> list[dict]:
    """trainer_state.json of every export of the run, in step order."""
    return [state for state in map(read_trainer_state, step_dirs(run_dir)) if state]


# -- the saved config ----------------------------------------------------------------------

def config_hash(cfg) -> str:
    """Short hash of a resolved config, minus keys that do not change what is trained."""
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("resume", "dry_run"):
        resolved.pop(key, None)
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def save_config(cfg, run_dir: Path, replace: bool = False) -> Path:
    """Keep a session's resolved config: config.yaml first, then configs/session-<k>.yaml
    (`replace`: config.yaml always, for commands that start over rather than resume)."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    target = run_dir / CONFIG
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if target.exists() and not replace:
            sessions = run_dir / SESSION_CONFIGS
            sessions.mkdir(exist_ok=True)
            target = sessions / f"session-{len(list(sessions.glob('session-*.yaml'))) + 2}.yaml"
        target.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    except OSError as error:
        raise TTLError(f"run directory {run_dir} is not writable ({error.strerror}); "
                       "set paths.runs_dir to a writable place") from error
    return target


def load_config(path: str | Path):
    """The resolved config (config.yaml) of a run directory or of an export inside one; None
    when there is none."""
    from omegaconf import OmegaConf

    path = Path(path)
    for candidate in (path / CONFIG, path.parent / CONFIG):
        if candidate.is_file():
            return OmegaConf.load(candidate)
    return None


def saved_config_hash(run_dir: str | Path) -> str | None:
    """`config_hash` of the config the run's latest session saved (None before any)."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    sessions = sorted((run_dir / SESSION_CONFIGS).glob("session-*.yaml"),
                      key=lambda p: int(p.stem.split("-")[1]))
    path = sessions[-1] if sessions else run_dir / CONFIG
    return config_hash(OmegaConf.load(path)) if path.is_file() else None


def holds_a_run(run_dir: Path) -> bool:
    """Whether `run_dir` already holds exports or checkpoints of a run."""
    run_dir = Path(run_dir)
    return bool(step_dirs(run_dir)) or any(checkpoint_dir(run_dir).glob("*.ckpt"))


# -- guards: one process per run, a checkpoint that loads --------------------------------

def is_primary_process() -> bool:
    """True on the process that owns the run directory (global rank 0 of a launched job)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "0") != "0":
            return False
    return True


class FileLock:
    """ttl's one lock, for the run directory and the data cache: a `filelock.FileLock` (an `flock`,
    gone with its process even after SIGKILL) holding the holder's pid, so that a refusal (`busy`)
    or, when `waiting` is given, a wait for the holder can name it."""

    def __init__(self, path: Path, busy: str = "{path} is locked by pid {pid}", waiting: str | None = None,
                 unwritable: str = "directory {dir} is not writable ({why})") -> None:
        self.path = Path(path)
        self.busy, self.waiting, self.unwritable = busy, waiting, unwritable
        self._lock = filelock.FileLock(self.path)

    def acquire(self) -> FileLock:
        """Take the lock (waiting for it with `waiting`), or raise TTLError naming its holder."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._lock.acquire(timeout=0)
            except filelock.Timeout as error:
                owner = self.path.read_text().strip() or "unknown"
                if self.waiting is None:
                    raise TTLError(self.busy.format(path=self.path, pid=owner)) from error
                print(self.waiting.format(path=self.path, pid=owner), flush=True)
                self._lock.acquire()
            self.path.write_text(str(os.getpid()))
        except OSError as error:  # the directory or the lock file cannot be made or written
            raise TTLError(self.unwritable.format(dir=self.path.parent, why=error.strerror)) from error
        return self

    def release(self) -> None:
        """Give the lock back (also happens when the process ends)."""
        self._lock.release()

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class RunLock(FileLock):
    """The lock on `run_dir/.lock`, held by the process that trains or fine-tunes in it: a second
    run there, which would interleave checkpoints and logs with the first, is refused."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(Path(run_dir) / ".lock",
                         busy=f"run directory {run_dir} is in use by another process (pid {{pid}}); "
                              "wait for it to finish, or choose another run_name",
                         unwritable="run directory {dir} is not writable ({why}); "
                                    "set paths.runs_dir to a writable place")


@contextmanager
def owned_run_dir(run_dir: str | Path) -> Iterator[Path]:
    """`run_dir`, locked by this job for as long as the block runs (only its primary process
    takes the lock: the other ranks of a launched job write into the same directory)."""
    run_dir = Path(run_dir)
    with RunLock(run_dir) if is_primary_process() else nullcontext():
        yield run_dir


def checkpoint_record_path(path: Path) -> Path:
    """Where the record of checkpoint `path` lives: `<name>.json` beside it (a link's record is
    its target's)."""
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    return target.with_name(target.name + ".json")


def write_checkpoint_record(path: Path, checkpoint: dict) -> None:
    """Record a checkpoint that is complete on disk: its size, its step and the W&B step saved
    in it. Written after the checkpoint's atomic rename, so a record means a whole file."""
    write_json(checkpoint_record_path(path), {"bytes": Path(path).stat().st_size,
                                              "global_step": checkpoint.get("global_step"),
                                              "wandb": wandb_state(checkpoint)})


def wandb_state(checkpoint: dict) -> dict | None:
    """The state the WandbStep callback saved in a Lightning checkpoint (its W&B step), if any."""
    return next((value for key, value in checkpoint.get("callbacks", {}).items()
                 if key.startswith("WandbStep") and isinstance(value, dict)), None)


def read_checkpoint_record(path: Path) -> dict | None:
    """The record of checkpoint `path` when it matches the file (same size), else None: an older
    checkpoint without one, or a file cut short or replaced since."""
    record_path = checkpoint_record_path(path)
    try:
        record = json.loads(record_path.read_text())
        return record if record.get("bytes") == Path(path).stat().st_size else None
    except (OSError, json.JSONDecodeError):
        return None


def checkpoint_is_readable(path: Path) -> bool:
    """True when `path` is a complete torch checkpoint: its record matches it (no read of the
    checkpoint itself), or, for a checkpoint without a record, its zip CRCs check out and its
    structure loads."""
    import torch

    if read_checkpoint_record(path) is not None:
        return True
    if checkpoint_record_path(path).is_file():
        return False  # recorded, but the file changed size since: cut short or replaced
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                return False
        torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return True
    except Exception:
        return False


def resume_candidates(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest first: last.ckpt, step-N.ckpt and SLURM's hpc_ckpt_N.ckpt."""
    found = list(checkpoint_dir(run_dir).glob("*.ckpt")) + list(run_dir.glob("hpc_ckpt_*.ckpt"))
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name == "last.ckpt"), reverse=True)


def latest_good_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that loads; damaged ones are skipped with a warning."""
    for path in resume_candidates(run_dir):
        if checkpoint_is_readable(path):
            return path
        print(f"warning: checkpoint {path} is truncated or corrupt; trying an older one")
    return None
