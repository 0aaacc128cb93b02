"""Check a rehearsal run end to end and compare its logged tokens/s with the bench's figure.

    python experiments/bench_gpu/device/rehearsal_report.py RUN_DIR BENCH_JSON

Prints JSON: the exports (steps, perplexity, energy), whether each loads its files and the
card and emissions log exist, the W&B offline run's perf/tokens_per_sec (median of the logging
windows after the first, which holds compilation), the bench's `ttl` figure for the same
settings, and their ratio (the issue asks for it within 10%).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path


def wandb_history(run_dir: Path) -> list[dict]:
    """History rows of the run's W&B offline run(s), read with `wandb leet inspect`."""
    rows = []
    for run in sorted((run_dir / "wandb").glob("offline-run-*")):
        out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)],
                             capture_output=True, text=True, timeout=300)
        records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        rows += [r["history"]["item"] for r in records if r.get("type") == "history"]
    return rows


def bench_rate(bench_json: Path) -> float | None:
    """The median tokens/s of the bench's `ttl` rows (ttl's default step, the recipe's batch)."""
    rows = json.loads(bench_json.read_text())["rows"] if bench_json.is_file() else []
    rates = [r["tokens_per_s"] for r in rows if r.get("variant") == "ttl" and "tokens_per_s" in r]
    return statistics.median(rates) if rates else None


def report(run_dir: Path, bench_json: Path) -> dict:
    exports = sorted((p for p in run_dir.glob("step-*") if p.name[5:].isdigit()),
                     key=lambda p: int(p.name[5:]))
    states = [json.loads((p / "trainer_state.json").read_text()) for p in exports]
    files = ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json")
    complete = all((p / name).is_file() for p in exports for name in files)
    data = run_dir / "data.json"
    rates = [row["perf/tokens_per_sec"] for row in wandb_history(run_dir) if "perf/tokens_per_sec" in row]
    logged = statistics.median(rates[1:]) if len(rates) > 1 else None
    bench = bench_rate(bench_json)
    return {
        "exports": [{k: s.get(k) for k in ("step", "tokens", "val_ppl", "energy_kwh", "emissions_kg_co2eq",
                                            "wall_time_s", "hardware")} for s in states],
        "exports_complete": complete,
        "card": exports[-1].joinpath("README.md").is_file() if exports else False,
        "emissions_csv": (run_dir / "emissions.csv").is_file(),
        "holdout": json.loads(data.read_text()).get("holdout") if data.is_file() else None,
        "logged_tokens_per_s": [round(r) for r in rates],
        "logged_median_after_first": round(logged) if logged else None,
        "bench_ttl_tokens_per_s": round(bench) if bench else None,
        "ratio_logged_over_bench": round(logged / bench, 3) if logged and bench else None,
    }


if __name__ == "__main__":
    print(json.dumps(report(Path(sys.argv[1]), Path(sys.argv[2])), indent=1))
