"""The recipe study's figures: every run of one or more ttl sweeps scored on the documents its
training held out, each arm's learning-rate curve, seeds at each arm's best learning rate,
tokens to target, and what the two scales predict for 160m.

    python experiments/recipe_study/study.py --data DIR --sweep runs/recipe-study-lr-sweep \
        [--sweep ...] [--previous results.json] [--cost experiments/recipe_study/switch_cost.json] \
        [--out results.json] [--plot lr_curves.png] [--curves val_curves.png]

A run belongs to a *setting* (its model and its number of steps: `study@400`, `study@1600`,
`study-4x@1600`; a run not in the study's bf16-mixed adds its precision: `study@1600/32`) and
an *arm* (its `recipe_switch`, e.g. `published`, `beta2+wsd`, `muon`), and
has a peak learning rate (`model.recipe.lr`) and a seed. Within a setting:

- **Learning-rate curve:** each arm's selection-half loss against its learning rate, seed 1 (the
  grid's seed). An arm's *best learning rate* is the grid point with the lowest selection-half
  loss; it must not be the grid's first or last point (`edge` says when it is).
- **Seeds at the best learning rate:** the report-half loss and bits per byte of seeds 1, 2, 3
  there, mean ± sample standard deviation, and the difference from *tuned published* (the
  published recipe at its own best learning rate). "Beyond the seed spread": the seeds' ranges
  do not overlap (`beyond_spread`).
- **Tokens to target:** the target is tuned published's final validation loss (the mean over its
  seeds of the last point of the `val/loss` curve each run logged). An arm's tokens to target are
  where the mean of its seeds' curves first reaches the target, linearly interpolated between
  logged points, as a ratio to published's training tokens (None: not reached).
- **What it predicts for 160m** (`predict_160m`): for an arm tuned at both scales (`study@400`,
  `study-4x@1600`), the power law in non-embedding parameters through its two best learning
  rates gives its 160m learning rate; its gain over tuned published at each scale says whether
  the gain grows or shrinks with scale.

The held-out documents are those `ttl.train` held out by content hash (`data.val_fraction`,
never trained on), split once more by the same hash into a *selection* half (learning rates and
winners are chosen on it) and a *report* half (the figures reported; nothing is chosen on it).
Each document is scored alone (`<s>` + text in windows of the model's context, every token
predicted once): loss in nats per token and bits per byte of UTF-8 text. Scores of each run are
cached in its directory (`heldout.json`), so a re-run only scores new runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from ttl.data.holdout import document_hash
from ttl.data.sources import resolve_source
from ttl.errors import TTLError
from ttl.evaluate.logs import curve, read_metrics
from ttl.evaluate.perplexity import IGNORE, Perplexity, sliding_windows, summed_nll
from ttl.rundir import read_trainer_state, step_dirs

SCORES = "heldout.json"
BASELINE = "published"
STUDY_PRECISION = "bf16-mixed"  # conf/experiment/recipe_study.yaml
GRID_SEED = 1
# Non-embedding parameters of each model: its hidden matrices (attention and MLP projections,
# the matrices Muon updates), what the learning-rate rule scales with.
NON_EMBEDDING = {"study": 851_968, "study-4x": 3_407_872, "160m": 113_246_208}
# The two scales the rule reads (model@steps), and the model it predicts for.
SMALL, MEDIUM, TARGET = "study@400", "study-4x@1600", "160m"


@dataclass(frozen=True)
class DocumentScore(Perplexity):
    """A Perplexity of documents scored one by one: `tokens` predicted tokens of `bytes` UTF-8
    bytes of text (`documents` of them)."""

    bytes: int
    documents: int

    @property
    def bits_per_byte(self) -> float:
        """Bits per byte of text: comparable across tokenizers and vocabularies."""
        return self.nll_sum / math.log(2) / self.bytes


def score_documents(model, tokenizer, texts: Iterable[str], seq_len: int, stride: int | None = None,
                    batch_size: int = 16) -> DocumentScore:
    """Score each document on its own, as a reader meets it: `<s>` then its text, every text
    token predicted once (sliding windows of `seq_len` every `stride` tokens within the
    document; default stride seq_len / 2), no context from other documents. Windows of equal
    length are batched across documents. Empty documents are skipped."""
    stride = stride or max(1, seq_len // 2)
    device = next(model.parameters()).device
    by_length: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    n_bytes = n_docs = 0
    for text in texts:
        if not text or not text.strip():
            continue
        ids = torch.tensor([tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False,
                                                             verbose=False)["input_ids"]])
        n_bytes += len(text.encode("utf-8"))
        n_docs += 1
        for begin, end, target_len in sliding_windows(ids.numel(), seq_len, stride):
            window = ids[begin:end]
            labels = window.clone()
            labels[:-target_len] = IGNORE
            by_length.setdefault(end - begin, []).append((window, labels))
    if not n_docs:
        raise TTLError("no non-empty documents to score")
    nll, count = 0.0, 0
    for pairs in by_length.values():
        if len(pairs[0][0]) < 2:  # a document of `<s>` alone predicts nothing
            continue
        for start in range(0, len(pairs), batch_size):
            inputs, labels = (torch.stack(column) for column in zip(*pairs[start:start + batch_size],
                                                                    strict=True))
            batch_nll, batch_count = summed_nll(model, inputs.to(device), labels.to(device))
            nll, count = nll + batch_nll, count + batch_count
    return DocumentScore(nll, count, n_bytes, n_docs)


def heldout_halves(data: str, val_fraction: float) -> dict[str, list[str]]:
    """The held-out documents of `data` as `ttl.train` holds them out, in two halves by hash."""
    source = resolve_source(data, "validation", "text", "train", "validation", val_fraction)
    halves: dict[str, list[str]] = {"selection": [], "report": []}
    for text in source.documents():
        halves["selection" if document_hash(text) < val_fraction / 2 else "report"].append(text)
    return halves


def arm_of(overrides: list[str], input_multiplier: float = 1.0, output_multiplier: float = 1.0) -> str:
    """An arm's name from a job's overrides: its recipe switch(es), `+` between several, and µP's
    input and output multipliers when they are not 1 (`mup+in4`, `mup+out0.25`: hyperparameters
    of their own)."""
    multipliers = (("in", input_multiplier), ("out", output_multiplier))
    alpha = "".join(f"+{name}{value:g}" for name, value in multipliers if value != 1)
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "recipe_switch":
            return value.strip("[]").replace(",", "+") + alpha
    return BASELINE + alpha


def setting_of(cfg) -> str:
    """`model@steps`, with `/precision` added when a run did not train in the study's bf16-mixed
    (runs in another precision are not compared with the bf16 ones: `study@1600/32`)."""
    setting = f"{cfg.model.name}@{cfg.trainer.max_steps}"
    precision = str(cfg.trainer.precision)
    return setting if precision == STUDY_PRECISION else f"{setting}/{precision}"


def jobs(sweeps: list[Path]) -> list[dict]:
    """Every finished job of the sweeps: directory, setting, arm, learning rate and seed (read
    from the run's own resolved config), and its overrides."""
    found = []
    for sweep in sweeps:
        for row_path in sorted(sweep.glob("*/sweep_row.json")):
            row = json.loads(row_path.read_text())
            if row.get("status") != "COMPLETED" or not step_dirs(row_path.parent):
                print(f"skip {row_path.parent}: status {row.get('status')}")
                continue
            cfg = OmegaConf.load(row_path.parent / "config.yaml")
            # older runs' configs have no multipliers
            arm = arm_of(row["overrides"].split(), cfg.model.get("input_multiplier", 1.0),
                         cfg.model.get("output_multiplier", 1.0))
            found.append({"dir": row_path.parent, "arm": arm,
                          "setting": setting_of(cfg),
                          "lr": float(cfg.model.recipe.lr), "seed": int(cfg.seed),
                          "tokens_per_step": int(cfg.model.recipe.tokens_per_step),
                          "overrides": row["overrides"]})
    return found


def results_json(settings: dict[str, dict], predictions: dict[str, dict],
                 halves: dict[str, list[str]]) -> dict:
    """What `--out` writes: each setting's arms with every run's figures, the 160m predictions and
    the halves' sizes; `recorded_runs` reads the runs back."""
    return {"settings": {s: {n: {k: v for k, v in a.items() if k != "runs"} | {"runs": [
        {k: r[k] for k in ("seed", "lr", "dir", "overrides", "scores", "tokens_per_s")}
        | {"val_curve": {"tokens": r["curve"][0], "loss": r["curve"][1]}}
        for r in a["runs"]]} for n, a in arms.items()} for s, arms in settings.items()},
        "predictions": predictions, "halves": {h: len(t) for h, t in halves.items()}}


def recorded_runs(path: Path) -> list[dict]:
    """The runs an earlier `--out` JSON recorded (their held-out scores, validation curves and
    speed), for runs whose directories are gone: a study continued on another machine keeps
    its earlier runs' figures without their checkpoints."""
    try:
        settings = json.loads(path.read_text())["settings"]
    except (OSError, KeyError, json.JSONDecodeError) as error:
        raise TTLError(f"{path}: not a results JSON written by study.py --out ({error})") from error
    rows = []
    for setting, arms in settings.items():
        for arm, summary in arms.items():
            for run in summary["runs"]:
                rows.append({"arm": arm, "setting": setting, "lr": run["lr"], "seed": run["seed"],
                             "overrides": run["overrides"], "dir": run["dir"], "scores": run["scores"],
                             "curve": (run["val_curve"]["tokens"], run["val_curve"]["loss"]),
                             "tokens_per_s": run["tokens_per_s"]})
    return rows


def score_run(job: dict, halves: dict[str, list[str]], stride: int | None = None) -> dict:
    """The run's final export scored on both halves (cached in the run directory)."""
    cache = job["dir"] / SCORES
    final = step_dirs(job["dir"])[-1]
    cfg = OmegaConf.load(job["dir"] / "config.yaml")
    seq_len = cfg.model.max_position_embeddings
    stride = stride or seq_len
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("export") == final.name and cached.get("stride") == stride:
            return cached
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    state = read_trainer_state(final)
    started = time.perf_counter()
    wall = state.get("wall_time_s")
    scores = {"export": final.name, "stride": stride, "step": state.get("step"),
              "tokens": state.get("tokens"), "wall_time_s": wall, "val_ppl": state.get("val_ppl"),
              "parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())}
    with torch.no_grad():
        for half, texts in halves.items():
            score = score_documents(model, tokenizer, texts, seq_len=seq_len, stride=stride, batch_size=32)
            scores[half] = {"loss": score.loss, "bits_per_byte": score.bits_per_byte,
                            "tokens": score.tokens, "bytes": score.bytes, "documents": score.documents}
    scores["scoring_s"] = time.perf_counter() - started
    cache.write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def validation_curve(job: dict) -> tuple[list[int], list[float]]:
    """(tokens, val/loss) the run logged during training (its CSV logger's files)."""
    return curve(read_metrics(job["dir"]), "val/loss", job["tokens_per_step"])


def logged_speed(job: dict) -> float:
    """The median training tokens/s the run logged (`perf/tokens_per_sec`, every logged step)."""
    values = [row["perf/tokens_per_sec"] for row in read_metrics(job["dir"])
              if row.get("perf/tokens_per_sec") is not None]
    return statistics.median(values)


def summarise(values: list[float]) -> dict:
    """Mean, sample standard deviation and range of one arm's seeds."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}


def beyond_spread(arm: dict, base: dict) -> bool:
    """Ranges of seeds that do not overlap (every seed of one arm beats every seed of the other),
    with at least two seeds on each side: the difference exceeds the seed spread."""
    if min(arm["n"], base["n"]) < 2:
        return False
    return arm["max"] < base["min"] or arm["min"] > base["max"]


def first_crossing(tokens: list[int], values: list[float], target: float) -> float | None:
    """Tokens at which a curve first reaches `target` (at or below), linearly interpolated
    between the logged points around it; None when it never does."""
    for i, value in enumerate(values):
        if value <= target:
            if i == 0:
                return float(tokens[0])
            t0, t1, v0 = tokens[i - 1], tokens[i], values[i - 1]
            return t0 + (t1 - t0) * (v0 - target) / (v0 - value)
    return None


def mean_curve(curves: list[tuple[list[int], list[float]]]) -> tuple[list[int], list[float]]:
    """The seeds' curves averaged at the tokens all of them logged."""
    common = sorted(set.intersection(*(set(t) for t, _ in curves)))
    lookup = [dict(zip(t, v, strict=True)) for t, v in curves]
    return common, [statistics.fmean(c[t] for c in lookup) for t in common]


def fitted_optimum(lrs: list[float], losses: list[float]) -> float | None:
    """The lr at the vertex of the parabola through the best grid point and its two neighbours,
    in log2(lr) (a x2 grid: equally spaced), kept between those neighbours; None when the best
    point is on the grid's edge or the grid is not x2. Two near-equal best points (a tie)
    give an optimum between them, not whichever happened to be lower."""
    i = min(range(len(lrs)), key=losses.__getitem__)
    if i in (0, len(lrs) - 1):
        return None
    x = [math.log2(lr) for lr in lrs[i - 1:i + 2]]
    if not all(math.isclose(b - a, 1.0, rel_tol=1e-3) for a, b in zip(x, x[1:], strict=False)):
        return None
    left, mid, right = losses[i - 1:i + 2]
    curvature = left - 2 * mid + right
    shift = 0.0 if curvature <= 0 else (left - right) / (2 * curvature)
    return 2 ** (x[1] + max(-1.0, min(1.0, shift)))


def analyse_setting(rows: list[dict], cost: dict[str, float]) -> dict:
    """One setting's learning-rate curves, best learning rates, seeds there and tokens to target."""
    arms: dict[str, dict] = {}
    for row in rows:
        arms.setdefault(row["arm"], {"runs": []})["runs"].append(row)
    for name, arm in arms.items():
        grid = sorted({r["lr"] for r in arm["runs"] if r["seed"] == GRID_SEED})
        points = {lr: next(r for r in arm["runs"] if r["lr"] == lr and r["seed"] == GRID_SEED)
                  for lr in grid}
        arm["lr_curve"] = [{"lr": lr, "selection_loss": points[lr]["scores"]["selection"]["loss"],
                            "report_loss": points[lr]["scores"]["report"]["loss"],
                            "final_val_loss": points[lr]["curve"][1][-1]} for lr in grid]
        best = min(grid, key=lambda lr: points[lr]["scores"]["selection"]["loss"])
        arm["best_lr"] = best
        arm["edge"] = len(grid) < 3 or best in (grid[0], grid[-1])
        arm["fitted_lr"] = fitted_optimum(grid, [points[lr]["scores"]["selection"]["loss"] for lr in grid])
        seeds = sorted((r for r in arm["runs"] if r["lr"] == best), key=lambda r: r["seed"])
        arm["seeds"] = [r["seed"] for r in seeds]
        for half in ("selection", "report"):
            for metric in ("loss", "bits_per_byte"):
                arm[f"{half}_{metric}"] = summarise([r["scores"][half][metric] for r in seeds])
        arm["final_val_loss"] = summarise([r["curve"][1][-1] for r in seeds])
        arm["tokens"] = seeds[0]["scores"]["tokens"]
        arm["parameters"] = seeds[0]["scores"]["parameters"]
        arm["mean_curve"] = mean_curve([r["curve"] for r in seeds])
        arm["tokens_per_s_ratio"] = cost.get(name)
        arm["logged_tokens_per_s"] = statistics.median(r["tokens_per_s"] for r in arm["runs"]) \
            if all("tokens_per_s" in r for r in arm["runs"]) else None
    base = arms.get(BASELINE)
    if base is None:
        return arms
    for arm in arms.values():
        if arm["tokens_per_s_ratio"] is None and arm["logged_tokens_per_s"] and base["logged_tokens_per_s"]:
            # No benchmark figure: the runs' own logged speed, against published's runs on the
            # same machine in the same conditions.
            arm["tokens_per_s_ratio"] = arm["logged_tokens_per_s"] / base["logged_tokens_per_s"]
    target = base["final_val_loss"]["mean"]
    for name, arm in arms.items():
        for key in ("selection_loss", "report_loss", "report_bits_per_byte"):
            arm[f"{key}_delta"] = arm[key]["mean"] - base[key]["mean"]
            arm[f"{key}_beyond_spread"] = name != BASELINE and beyond_spread(arm[key], base[key])
        reached = first_crossing(*arm["mean_curve"], target)
        arm["target_val_loss"] = target
        arm["tokens_to_target"] = reached
        arm["tokens_to_target_ratio"] = None if reached is None else reached / base["tokens"]
        per_seed = [first_crossing(*r["curve"], target) for r in arm["runs"] if r["lr"] == arm["best_lr"]]
        arm["tokens_to_target_ratio_seeds"] = [None if t is None else t / base["tokens"] for t in per_seed]
        if arm["tokens_to_target_ratio"] is not None and arm["tokens_per_s_ratio"]:
            # Time to reach the target relative to published's: tokens needed / speed.
            arm["time_to_target_ratio"] = arm["tokens_to_target_ratio"] / arm["tokens_per_s_ratio"]
    return arms


def predict_160m(settings: dict[str, dict]) -> dict[str, dict]:
    """For each arm tuned at both scales: the power law through its two optimal learning rates
    (each scale's `fitted_optimum`, else its best grid point), lr = lr_medium * (N / N_medium) **
    exponent in non-embedding parameters N, evaluated at 160m; and whether its gain over tuned
    published grows or shrinks from the small scale to the medium one (report-half loss). An
    arm whose best lr lies on its grid's edge at either scale is flagged (`edge`)."""
    small, medium = settings.get(SMALL, {}), settings.get(MEDIUM, {})
    n_small, n_medium = NON_EMBEDDING[SMALL.split("@")[0]], NON_EMBEDDING[MEDIUM.split("@")[0]]
    predictions = {}
    for name in sorted(set(small) & set(medium)):
        a, b = small[name], medium[name]
        lr_small, lr_medium = a.get("fitted_lr") or a["best_lr"], b.get("fitted_lr") or b["best_lr"]
        exponent = math.log(lr_medium / lr_small) / math.log(n_medium / n_small)
        row = {"lr_small": lr_small, "lr_medium": lr_medium, "exponent": exponent,
               "best_lr_small": a["best_lr"], "best_lr_medium": b["best_lr"],
               "edge": a["edge"] or b["edge"],
               "lr_160m": lr_medium * (NON_EMBEDDING[TARGET] / n_medium) ** exponent}
        if name != BASELINE and "report_loss_delta" in a and "report_loss_delta" in b:
            row["delta_small"], row["delta_medium"] = a["report_loss_delta"], b["report_loss_delta"]
            # A gain is a negative delta (lower loss than tuned published).
            row["gain"] = "grows" if b["report_loss_delta"] < a["report_loss_delta"] else "shrinks"
            row["beyond_spread_at_both"] = a["report_loss_beyond_spread"] and b["report_loss_beyond_spread"]
            row["tokens_to_target_small"] = a.get("tokens_to_target_ratio")
            row["tokens_to_target_medium"] = b.get("tokens_to_target_ratio")
        predictions[name] = row
    return predictions


def prediction_table(predictions: dict[str, dict]) -> str:
    """The learning-rate rule and the gain's trend with scale, one row per arm."""
    lines = ["| arm | fitted optimum small | fitted optimum medium | exponent | lr for 160m | "
             "Δ report loss small | Δ medium | gain with scale | beyond spread at both |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in sorted(predictions.items(), key=lambda item: (item[0] != BASELINE, item[0])):
        ds, dm = row.get("delta_small"), row.get("delta_medium")
        lines.append(f"| {name} | {row['lr_small']:.2e} | {row['lr_medium']:.2e} | {row['exponent']:+.2f} | "
                     f"{row['lr_160m']:.1e}{' (edge)' if row['edge'] else ''} | "
                     f"{'-' if ds is None else f'{ds:+.4f}'} | {'-' if dm is None else f'{dm:+.4f}'} | "
                     f"{row.get('gain', '-')} | {row.get('beyond_spread_at_both', '-')} |")
    return "\n".join(lines)


def fmt(summary: dict, digits: int = 4) -> str:
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f}"


def delta(name: str, arm: dict, key: str) -> str:
    """An arm's difference from tuned published in `key`, marked when beyond the seed spread."""
    if name == BASELINE or f"{key}_delta" not in arm:
        return "-"
    mark = " **beyond spread**" if arm[f"{key}_beyond_spread"] else ""
    return f"{arm[f'{key}_delta']:+.4f}{mark}"


def lr_table(arms: dict[str, dict]) -> str:
    """Selection-half loss of every grid point, one row per arm (best in bold, edge marked)."""
    rates = sorted({p["lr"] for a in arms.values() for p in a["lr_curve"]})
    lines = ["| arm | " + " | ".join(f"{lr:.2e}" for lr in rates) + " | best lr | fitted optimum |",
             "|---|" + "---|" * (len(rates) + 2)]
    for name in sorted(arms, key=lambda n: (n != BASELINE, n)):
        arm = arms[name]
        cells = {p["lr"]: p["selection_loss"] for p in arm["lr_curve"]}
        row = [("**%.4f**" if lr == arm["best_lr"] else "%.4f") % cells[lr] if lr in cells else "-"
               for lr in rates]
        best = f"{arm['best_lr']:.2e}" + (" (edge)" if arm["edge"] else "")
        fitted = "-" if arm.get("fitted_lr") is None else f"{arm['fitted_lr']:.2e}"
        lines.append(f"| {name} | " + " | ".join(row) + f" | {best} | {fitted} |")
    return "\n".join(lines)


def seeds_table(arms: dict[str, dict]) -> str:
    """Seeds at each arm's best learning rate against tuned published, by report-half loss."""
    order = sorted(arms, key=lambda n: (n != BASELINE, arms[n]["report_loss"]["mean"]))
    lines = ["| arm | best lr | seeds | report loss (nats/token) | Δ vs tuned published | "
             "report bits/byte | Δ bits/byte | tokens to target | tokens/s vs published | "
             "time to target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        arm = arms[name]
        ratio = arm.get("tokens_to_target_ratio")
        speed = arm.get("tokens_per_s_ratio")
        when = arm.get("time_to_target_ratio")
        lines.append(
            f"| {name} | {arm['best_lr']:.2e} | {arm['report_loss']['n']} | {fmt(arm['report_loss'])} | "
            f"{delta(name, arm, 'report_loss')} | {fmt(arm['report_bits_per_byte'])} | "
            f"{delta(name, arm, 'report_bits_per_byte')} | "
            f"{'not reached' if ratio is None else f'x{ratio:.3f}'} | "
            f"{'-' if not speed else f'x{speed:.3f}'} | {'-' if when is None else f'x{when:.3f}'} |")
    return "\n".join(lines)


def plot_lr_curves(settings: dict[str, dict], path: Path) -> None:
    """Selection-half loss against the peak learning rate, one panel per setting, a line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2), squeeze=False)
    for ax, (setting, arms) in zip(axes[0], settings.items(), strict=True):
        for name in sorted(arms, key=lambda n: (n != BASELINE, n)):
            points = arms[name]["lr_curve"]
            ax.plot([p["lr"] for p in points], [p["selection_loss"] for p in points], marker="o",
                    label=name, linewidth=2.5 if name == BASELINE else 1.5)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel("held-out loss, selection half (nats/token)")
        ax.set_title(setting)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_val_curves(settings: dict[str, dict], path: Path) -> None:
    """Each arm's mean validation curve at its best learning rate; tuned published's final loss
    (the target) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2), squeeze=False)
    for ax, (setting, arms) in zip(axes[0], settings.items(), strict=True):
        for name in sorted(arms, key=lambda n: (n != BASELINE, n)):
            tokens, values = arms[name]["mean_curve"]
            ax.plot([t / 1e6 for t in tokens], values, label=f"{name} (lr {arms[name]['best_lr']:.1e})")
        if BASELINE in arms:
            ax.axhline(arms[BASELINE]["target_val_loss"], color="black", linestyle="--", linewidth=1,
                       label="target: tuned published's final loss")
        ax.set_xlabel("training tokens (millions)")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title(setting)
        low = min(min(a["mean_curve"][1]) for a in arms.values())
        ax.set_ylim(low - 0.1, low + 1.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the corpus the sweeps trained on (data.path)")
    parser.add_argument("--sweep", action="append", type=Path, default=[], help="a sweep directory")
    parser.add_argument("--previous", type=Path, action="append", default=[],
                        help="an earlier --out JSON: its runs join the sweeps' (a sweep's run of the same "
                             "setting, arm, lr and seed replaces the recorded one)")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="data.val_fraction of the runs")
    parser.add_argument("--stride", type=int, default=None,
                        help="tokens between scoring windows (default: the model's context)")
    parser.add_argument("--cost", type=Path, help="bench_switch_cost.py's JSON (tokens/s per arm)")
    parser.add_argument("--out", type=Path, help="write every run's figures and the summary as JSON")
    parser.add_argument("--plot", type=Path, help="write the learning-rate curves (PNG)")
    parser.add_argument("--curves", type=Path, help="write the validation curves at the best lr (PNG)")
    args = parser.parse_args()

    halves = heldout_halves(args.data, args.val_fraction)
    for half, texts in halves.items():
        print(f"{half} half: {len(texts)} held-out documents, {sum(len(t.encode()) for t in texts):,} bytes")
    cost = {}
    if args.cost:
        cost = {row["arm"].strip("[]").replace(",", "+"): row["ratio"]
                for row in json.loads(args.cost.read_text())["rows"]}
    if not args.sweep and not args.previous:
        parser.error("give at least one --sweep or --previous")
    runs: dict[tuple, dict] = {}
    for previous in args.previous:
        for row in recorded_runs(previous):
            runs[row["setting"], row["arm"], row["lr"], row["seed"]] = row
    print(f"{len(runs)} runs recorded in {', '.join(map(str, args.previous)) or 'no earlier results'}")
    for job in jobs(args.sweep):
        scores = score_run(job, halves, args.stride)
        row = {**{k: job[k] for k in ("arm", "setting", "lr", "seed", "overrides")}, "dir": str(job["dir"]),
               "scores": scores, "curve": validation_curve(job), "tokens_per_s": logged_speed(job)}
        runs[job["setting"], job["arm"], job["lr"], job["seed"]] = row
        print(f"{job['setting']:<16} {job['arm']:<12} lr {job['lr']:.2e} seed {job['seed']}: report loss "
              f"{scores['report']['loss']:.4f}, {scores['report']['bits_per_byte']:.4f} bits/byte",
              flush=True)
    by_setting: dict[str, list[dict]] = {}
    for row in runs.values():
        by_setting.setdefault(row["setting"], []).append(row)
    settings = {name: analyse_setting(rows, cost) for name, rows in sorted(by_setting.items())}
    for name, arms in settings.items():
        print(f"\n## {name}\n\n{lr_table(arms)}\n\n{seeds_table(arms)}")
    predictions = predict_160m(settings)
    if predictions:
        print(f"\n## {SMALL} -> {MEDIUM} -> {TARGET}\n\n{prediction_table(predictions)}")
    if args.out:
        args.out.write_text(json.dumps(results_json(settings, predictions, halves), indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot_lr_curves(settings, args.plot)
        print(f"wrote {args.plot}")
    if args.curves:
        plot_val_curves(settings, args.curves)
        print(f"wrote {args.curves}")


if __name__ == "__main__":
    main()
