"""What a resume reads before Lightning loads the checkpoint, on a checkpoint of the 160m model's size.

    python experiments/bench_resume.py [--repeats 3] [--dir /tmp/bench-resume]

Writes one full-state checkpoint of TeenyTinyLlama-160m (fp32 weights and AdamW's two moments:
1.95 GB) with ttl's checkpoint writer, linked as last.ckpt, then times what `ttl.train` does
before `trainer.fit(ckpt_path=...)`: choosing the newest readable checkpoint
(`latest_good_checkpoint`) and finding the W&B step to resume at (`wandb_step_in_checkpoint`),
with the checkpoint's record (now) and without it (as before: a CRC over the whole file, a
`torch.load` to check it, another for the W&B step). Lightning's own load is timed beside them,
as the one read that remains. Median of `--repeats`, with the page cache dropped before each
timing when the machine allows it (root), else warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import torch

from ttl.model import build_model, llama_config
from ttl.rundir import checkpoint_record_path, latest_good_checkpoint
from ttl.train.checkpoint_io import RecordedCheckpointIO
from ttl.train.config import model_preset
from ttl.train.loggers import wandb_step_in_checkpoint


def drop_page_cache() -> bool:
    """Drop the kernel's page cache (root only); False when not allowed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def checkpoint_160m() -> dict:
    """A Lightning-style checkpoint of the 160m model: weights, AdamW moments, a W&B step."""
    model = build_model(llama_config(model_preset("160m")))
    params = dict(model.named_parameters())
    state = {i: {"step": torch.tensor(22_000.0), "exp_avg": torch.zeros_like(p),
                 "exp_avg_sq": torch.zeros_like(p)} for i, p in enumerate(params.values())}
    return {"global_step": 22_000, "state_dict": {f"model.{k}": v.detach() for k, v in params.items()},
            "optimizer_states": [{"state": state, "param_groups": [{"params": list(state), "lr": 6e-4}]}],
            "callbacks": {"WandbStep": {"wandb_step": 22_000, "global_step": 22_000}}}


def timed(fn, repeats: int, cold: bool) -> list[float]:
    times = []
    for _ in range(repeats):
        if cold:
            drop_page_cache()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-resume"))
    args = parser.parse_args()
    run_dir = args.dir
    shutil.rmtree(run_dir, ignore_errors=True)
    path = run_dir / "checkpoints" / "step-22000.ckpt"
    path.parent.mkdir(parents=True)
    RecordedCheckpointIO().save_checkpoint(checkpoint_160m(), path)
    os.symlink(path.name, path.with_name("last.ckpt"))
    size = path.stat().st_size
    cold = drop_page_cache()
    print(f"checkpoint: {size / 1e9:.2f} GB; page cache "
          f"{'dropped before each timing' if cold else 'warm'}; {os.cpu_count()} cores, "
          f"torch {torch.__version__}")

    def ours() -> None:
        chosen = latest_good_checkpoint(run_dir)
        wandb_step_in_checkpoint(str(chosen), chosen.parent)

    record = checkpoint_record_path(path)
    with_record = timed(ours, args.repeats, cold)
    record.rename(record.with_suffix(".off"))
    without_record = timed(ours, args.repeats, cold)
    record.with_suffix(".off").rename(record)
    lightning = timed(lambda: torch.load(path, map_location="cpu", weights_only=False), args.repeats, cold)
    rows = [("before: CRC + torch.load + torch.load (no record)", without_record),
            ("now: the record only", with_record),
            ("Lightning's own load (the one read left)", lightning)]
    print("| what ttl reads before fit | median s | runs |\n|---|---|---|")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times):.3f} | {' / '.join(f'{t:.3f}' for t in times)} |")
    before, now, load = (statistics.median(t) for t in (without_record, with_record, lightning))
    print(f"start to the first resumed step, reads only: {before + load:.2f} s before, "
          f"{now + load:.2f} s now (x{(now + load) / (before + load):.3f})")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
