"""`ResumeCheckpoint`: Lightning's ModelCheckpoint with the run directory's layout.

Full-state `checkpoints/step-<N>.ckpt` files (the `keep` newest stay), with `last.ckpt` a
symbolic link to the newest (not a second copy: 1.95 GB per checkpoint of the 160m model). A
re-run of the same command resumes from the newest one that loads.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from ttl.rundir import checkpoint_dir


class ResumeCheckpoint(ModelCheckpoint):
    """Save `checkpoints/step-<N>.ckpt` and link `last.ckpt` to it every `every_n_steps` steps;
    keep `keep`."""

    def __init__(self, run_dir: str, every_n_steps: int, keep: int = 2) -> None:
        super().__init__(dirpath=checkpoint_dir(run_dir), filename="step-{step}",
                         every_n_train_steps=every_n_steps, save_top_k=keep, monitor="step", mode="max",
                         save_last="link", auto_insert_metric_name=False)
