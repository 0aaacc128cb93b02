"""Fine-tune a quickstart-scale model on HateBR (full local splits, CPU): test scores against the
majority baseline, and wall time.

It runs the user's commands in subprocesses: `python -m ttl.train experiment=quickstart` (the
README's 393,536-parameter model, 150 steps on the sample corpus; skipped with --checkpoint),
then `python -m ttl.finetune task=hatebr checkpoint=.../step-150` for each variant:

- pre-trained vs. the same architecture and tokenizer with random weights (no pre-training),
- the original recipe's lr 4e-5 vs. lr 1e-3 (a tiny model moves little at 4e-5 in 840 steps),
- two fine-tuning seeds (classification head initialisation and data order) for the spread.

Every variant keeps the epoch with the best validation macro-F1 (3 epochs, batch 16) and is
scored once on test. Prints a table and writes the figures to --out (JSON).

    python experiments/bench_finetune_hatebr.py [--tasks-dir ../shared/data/tasks] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import cpu_name

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run `python ARGS`; return stdout and wall seconds (raise with the stderr tail on failure)."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, *args], cwd=cwd, env={**os.environ, **env},
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout, time.monotonic() - start


def random_init_copy(checkpoint: Path, out: Path) -> Path:
    """The checkpoint's architecture and tokenizer with freshly initialised weights (seed 42)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(42)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(checkpoint))
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(checkpoint / name, out / name)
    return out


def main() -> None:
    """Pre-train (unless given a checkpoint), fine-tune every variant, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path,
                        help="a pre-trained step-<N>/ (default: train the quickstart)")
    parser.add_argument("--tasks-dir", type=Path, default=ROOT.parent / "shared" / "data" / "tasks")
    parser.add_argument("--threads", default="1",
                        help="OMP_NUM_THREADS of the runs (1 is fastest on a busy box)")
    parser.add_argument("--lrs", default="4e-5,1e-3")
    parser.add_argument("--seeds", default="42,43", help="fine-tuning seeds (head init, data order)")
    parser.add_argument("--out", type=Path, default=Path("bench_finetune_hatebr.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    env = {**OFFLINE, "OMP_NUM_THREADS": args.threads, "TTL_CACHE_DIR": str(work / "cache"),
           "TTL_TASKS_DIR": str(args.tasks_dir.resolve())}
    pretrain_s = None
    checkpoint = args.checkpoint
    if checkpoint is None:
        _, pretrain_s = run(["-m", "ttl.train", "experiment=quickstart"], work, env)
        checkpoint = work / "runs" / "quickstart" / "step-150"
        print(f"pre-trained the quickstart model in {pretrain_s:.0f} s: {checkpoint}")
    checkpoints = {"quickstart step-150": checkpoint.resolve(),
                   "random init": random_init_copy(checkpoint.resolve(), work / "random-init")}

    rows = []
    for name, path in checkpoints.items():
        for lr in args.lrs.split(","):
            for seed in args.seeds.split(","):
                run_name = f"hatebr-{name.split()[0]}-lr{lr}-seed{seed}"
                _, seconds = run(["-m", "ttl.finetune", "task=hatebr", f"checkpoint={path}", "logger=csv",
                                  f"run_name={run_name}", f"recipe.lr={lr}", f"seed={seed}"], work, env)
                metrics = json.loads((work / "runs" / run_name / "metrics.json").read_text())
                rows.append({**metrics, "variant": name, "lr": float(lr), "seed": int(seed),
                             "wall_s": round(seconds, 1)})
                selected, test = metrics["selection"], metrics["test"]
                print(f"{name:20s} lr {lr:>6s} seed {seed}: val macro-F1 {selected['val/macro_f1']:.4f} "
                      f"(epoch {selected['epoch']}); test accuracy {test['accuracy']:.4f} "
                      f"macro-F1 {test['macro_f1']:.4f}; {seconds:.0f} s "
                      f"(fit + test {metrics['fit_and_test_seconds']:.0f} s, {metrics['energy']['kwh']} kWh)")

    base = rows[0]["majority_baseline"]
    print(f"majority baseline (always {base['label_name']}): accuracy {base['accuracy']:.4f} "
          f"macro-F1 {base['macro_f1']:.4f}")
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
               "python": platform.python_version()}
    import lightning
    import torch
    import transformers

    machine |= {"torch": torch.__version__, "lightning": lightning.__version__,
                "transformers": transformers.__version__}
    args.out.write_text(json.dumps({"machine": machine, "pretrain_s": pretrain_s, "runs": rows}, indent=2))
    print(f"machine: {machine}\nresults: {args.out}\nwork directory: {work}")


if __name__ == "__main__":
    main()
