"""The 160m check of the recipe study: `experiment=ttl_160m` against `experiment=ttl_160m_modern`
for the same token budget, on one GPU, then both validation curves and the tokens-to-target
ratio (the tokens at which modern's curve first reaches ttl_160m's final validation loss,
over ttl_160m's tokens), as the study computes them at small scale.

    python experiments/recipe_study/check_160m.py --data DIR [--steps 2000] [--out F] [-- OVERRIDES]

`--data`: Pt-Corpus-Instruct in the Hub's layout (a local copy, or the Hub id). Both runs use
the published 160m step (8,192 tokens), the published warmup scaled to `--steps`
(5,000 of 458,000), a validation point every `--steps / 20` steps and the CSV logger; anything
after `--` is passed to both runs (`trainer=h100`, `data.max_val_blocks=...`). On a CPU, a test
runs it in a few steps of the tiny model (`-- model=tiny trainer=cpu ...`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ttl.evaluate.logs import curve, read_metrics

HERE = Path(__file__).resolve().parent
ARMS = ("ttl_160m", "ttl_160m_modern")
PUBLISHED_WARMUP, PUBLISHED_STEPS = 5_000, 458_000


def study_module():
    """study.py beside this script (first_crossing: one definition of tokens to target)."""
    spec = importlib.util.spec_from_file_location("recipe_study", HERE / "study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recipe_study", module)
    spec.loader.exec_module(module)
    return module


def train(experiment: str, data: str, steps: int, runs_dir: Path, extra: list[str]) -> Path:
    """One run of `python -m ttl.train`; returns its run directory."""
    name = f"check-{experiment.replace('_', '-')}"
    warmup = max(1, round(steps * PUBLISHED_WARMUP / PUBLISHED_STEPS))
    command = [sys.executable, "-m", "ttl.train", f"experiment={experiment}", f"data.path={data}",
               f"run_name={name}", f"paths.runs_dir={runs_dir}", "logger=csv", "resume=never",
               f"model.recipe.max_steps={steps}", f"model.recipe.warmup_steps={warmup}",
               f"model.recipe.eval_every_n_steps={max(1, steps // 20)}",
               f"model.recipe.checkpoint_every_n_steps={steps}", *extra]
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return runs_dir / name


def compare(run_dirs: dict[str, Path]) -> dict:
    """Both validation curves, the target (ttl_160m's final val loss) and modern's tokens to it."""
    study = study_module()
    curves = {}
    for arm, run_dir in run_dirs.items():
        tokens_per_step = OmegaConf.load(run_dir / "config.yaml").model.recipe.tokens_per_step
        curves[arm] = curve(read_metrics(run_dir), "val/loss", tokens_per_step)
    base_tokens, base_loss = curves["ttl_160m"]
    target = base_loss[-1]
    reached = study.first_crossing(*curves["ttl_160m_modern"], target)
    return {"curves": {arm: {"tokens": t, "val_loss": v} for arm, (t, v) in curves.items()},
            "target_val_loss": target, "tokens_to_target": reached,
            "tokens_to_target_ratio": None if reached is None else reached / base_tokens[-1]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Pt-Corpus-Instruct in the Hub's layout, or its id")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the two runs go")
    parser.add_argument("--out", type=Path, help="write the curves and the ratio as JSON")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for both runs")
    args = parser.parse_args(argv)
    runs_dir = args.runs_dir.resolve()
    run_dirs = {arm: train(arm, args.data, args.steps, runs_dir, args.overrides) for arm in ARMS}
    result = compare(run_dirs)
    for arm, points in result["curves"].items():
        print(f"\n{arm}: tokens -> validation loss")
        for tokens, loss in zip(points["tokens"], points["val_loss"], strict=True):
            print(f"  {tokens:>14,} {loss:.4f}")
    ratio = result["tokens_to_target_ratio"]
    print(f"\ntarget (ttl_160m's final validation loss): {result['target_val_loss']:.4f}")
    print("tokens to target, ttl_160m_modern / ttl_160m: "
          + ("not reached" if ratio is None else f"x{ratio:.3f}"))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
