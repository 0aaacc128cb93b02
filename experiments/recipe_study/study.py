"""The recipe study's held-out figures: every run of one or more ttl sweeps scored on the
documents its training held out, then mean and spread over seeds per arm.

    python experiments/recipe_study/study.py --data DIR --sweep runs/recipe-study-sweep \
        [--sweep runs/recipe-study-combined-sweep ...] [--out results.json] [--plot heldout.png]

The held-out documents are those `ttl.train` held out by content hash (`data.val_fraction` of
the runs; never trained on). They are split once more by the same hash into two halves:
- the *selection* half decides which switches win (and so what the combination holds);
- the *report* half gives the figures the README reports; nothing is chosen on it.
Each document is scored on its own (`<s>` + text in windows of the model's context, every
token predicted once; `--stride` below the context gives later windows more context at more
cost): held-out loss in nats per token and bits per byte of UTF-8 text.

An arm's difference from the published recipe "exceeds the seed spread" when the ranges of
its seeds' figures do not overlap (every seed of one arm beats every seed of the other). The
rule was fixed before the runs were read. Scores of each run are cached in its directory
(`heldout.json`), so a re-run only scores new runs.
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
from ttl.evaluate.perplexity import IGNORE, Perplexity, batches, sliding_windows, summed_nll
from ttl.rundir import read_trainer_state, step_dirs

SCORES = "heldout.json"
BASELINE = "published"
# Overrides every run of the study shares: not part of an arm's name.
SHARED_KEYS = {"experiment", "data.path", "seed", "run_name", "paths.runs_dir"}
# Switches of the same knob: the combination takes the better of them, never both.
EXCLUSIVE = [{"lr_floor", "wsd"}]


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
        for inputs, labels in zip(batches([p[0] for p in pairs], batch_size),
                                  batches([p[1] for p in pairs], batch_size), strict=True):
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


def arm_of(overrides: list[str]) -> str:
    """An arm's name from a job's overrides: its recipe switch(es) and any other change."""
    switch, extra = BASELINE, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "recipe_switch":
            switch = value.strip("[]").replace(",", "+")
        elif key not in SHARED_KEYS:
            extra.append(item)
    return " ".join([switch, *extra])


def jobs(sweeps: list[Path]) -> list[dict]:
    """Every finished job of the sweeps: its directory, arm, seed and overrides."""
    found = []
    for sweep in sweeps:
        for row_path in sorted(sweep.glob("*/sweep_row.json")):
            row = json.loads(row_path.read_text())
            overrides = row["overrides"].split()
            seed = next((int(o.split("=")[1]) for o in overrides if o.startswith("seed=")), None)
            if row.get("status") != "COMPLETED" or not step_dirs(row_path.parent):
                print(f"skip {row_path.parent}: status {row.get('status')}")
                continue
            found.append({"dir": row_path.parent, "arm": arm_of(overrides), "seed": seed,
                          "overrides": row["overrides"]})
    return found


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
              "tokens_per_s": (state.get("tokens") or 0) / wall if wall else None,
              "parameters": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())}
    with torch.no_grad():
        for half, texts in halves.items():
            score = score_documents(model, tokenizer, texts, seq_len=seq_len, stride=stride, batch_size=32)
            scores[half] = {"loss": score.loss, "bits_per_byte": score.bits_per_byte,
                            "tokens": score.tokens, "bytes": score.bytes, "documents": score.documents}
    scores["scoring_s"] = time.perf_counter() - started
    cache.write_text(json.dumps(scores, indent=2) + "\n")
    return scores


def summarise(values: list[float]) -> dict:
    """Mean, sample standard deviation and range of one arm's seeds."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}


def beyond_spread(arm: dict, base: dict) -> bool:
    """Ranges of seeds that do not overlap: the difference exceeds the seed spread."""
    return arm["max"] < base["min"] or arm["min"] > base["max"]


def aggregate(rows: list[dict]) -> dict[str, dict]:
    """Per arm: each half's loss and bits per byte summarised over seeds, and its difference
    from the published recipe (flagged when beyond the seed spread)."""
    arms: dict[str, dict] = {}
    for row in rows:
        arms.setdefault(row["arm"], {"runs": []})["runs"].append(row)
    for arm in arms.values():
        for half in ("selection", "report"):
            for metric in ("loss", "bits_per_byte"):
                arm[f"{half}_{metric}"] = summarise([r["scores"][half][metric] for r in arm["runs"]])
        arm["wall_time_s"] = summarise([r["scores"]["wall_time_s"] or 0.0 for r in arm["runs"]])
        arm["tokens"] = arm["runs"][0]["scores"]["tokens"]
        arm["parameters"] = arm["runs"][0]["scores"]["parameters"]
    base = arms.get(BASELINE)
    for name, arm in arms.items():
        if base is None:
            continue
        for key in ("selection_loss", "report_loss", "report_bits_per_byte"):
            arm[f"{key}_delta"] = arm[key]["mean"] - base[key]["mean"]
            arm[f"{key}_beyond_spread"] = name != BASELINE and beyond_spread(arm[key], base[key])
    return arms


def winners(arms: dict[str, dict]) -> list[str]:
    """Single switches better than published beyond the seed spread on the selection half
    (of exclusive switches, the better one)."""
    single = {n: a for n, a in arms.items() if n != BASELINE and " " not in n and "+" not in n}
    won = [n for n, a in single.items()
           if a.get("selection_loss_beyond_spread") and a["selection_loss_delta"] < 0]
    for group in EXCLUSIVE:
        clash = [n for n in won if n in group]
        if len(clash) > 1:
            best = min(clash, key=lambda n: arms[n]["selection_loss"]["mean"])
            won = [n for n in won if n not in group or n == best]
    return sorted(won)


def fmt(summary: dict, digits: int = 4) -> str:
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f}"


def delta(name: str, arm: dict, key: str) -> str:
    """An arm's difference from published in `key`, marked when beyond the seed spread."""
    if name == BASELINE or f"{key}_delta" not in arm:
        return "-"
    mark = " **beyond spread**" if arm[f"{key}_beyond_spread"] else ""
    return f"{arm[f'{key}_delta']:+.4f}{mark}"


def table(arms: dict[str, dict]) -> str:
    """The README's markdown table, the published recipe first, then by report-half loss."""
    order = sorted(arms, key=lambda n: (n != BASELINE, arms[n]["report_loss"]["mean"]))
    lines = ["| arm | seeds | params | tokens | report loss (nats/token) | Δ vs published | "
             "report bits/byte | Δ bits/byte | selection loss | Δ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in order:
        arm = arms[name]
        lines.append(f"| {name} | {arm['report_loss']['n']} | {arm['parameters']:,} | {arm['tokens']:,} | "
                     f"{fmt(arm['report_loss'])} | {delta(name, arm, 'report_loss')} | "
                     f"{fmt(arm['report_bits_per_byte'])} | {delta(name, arm, 'report_bits_per_byte')} | "
                     f"{fmt(arm['selection_loss'])} | {delta(name, arm, 'selection_loss')} |")
    return "\n".join(lines)


def plot(arms: dict[str, dict], path: Path) -> None:
    """Report-half bits per byte of every seed (dots) and the arm's mean (bar), published's
    range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(arms, key=lambda n: (n != BASELINE, arms[n]["report_bits_per_byte"]["mean"]))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(order) + 1.2))
    base = arms.get(BASELINE, {}).get("report_bits_per_byte")
    if base:
        ax.axvspan(base["min"], base["max"], color="0.85", label="published: range of seeds")
    for y, name in enumerate(order):
        summary = arms[name]["report_bits_per_byte"]
        ax.plot([summary["mean"]] * 2, [y - 0.3, y + 0.3], color="black")
        ax.scatter(summary["values"], [y] * len(summary["values"]), s=18, zorder=3)
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel("held-out bits per byte (report half; lower is better)")
    ax.set_title("Recipe switches on the study model, 3 seeds each")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the corpus the sweeps trained on (data.path)")
    parser.add_argument("--sweep", action="append", type=Path, required=True, help="a sweep directory")
    parser.add_argument("--val-fraction", type=float, default=0.05, help="data.val_fraction of the runs")
    parser.add_argument("--stride", type=int, default=None,
                        help="tokens between scoring windows (default: the model's context)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG)")
    args = parser.parse_args()

    halves = heldout_halves(args.data, args.val_fraction)
    for half, texts in halves.items():
        print(f"{half} half: {len(texts)} held-out documents, {sum(len(t.encode()) for t in texts):,} bytes")
    rows = []
    for job in jobs(args.sweep):
        scores = score_run(job, halves, args.stride)
        rows.append({"arm": job["arm"], "seed": job["seed"], "dir": str(job["dir"]), "scores": scores})
        print(f"{job['arm']:<28} seed {job['seed']}: report loss {scores['report']['loss']:.4f}, "
              f"{scores['report']['bits_per_byte']:.4f} bits/byte ({job['dir']})", flush=True)
    arms = aggregate(rows)
    print()
    print(table(arms))
    chosen = winners(arms)
    print(f"\nwinners on the selection half (beyond the seed spread): {', '.join(chosen) or 'none'}")
    if args.out:
        serialisable = {n: {k: v for k, v in a.items() if k != "runs"} | {"runs": [
            {"seed": r["seed"], "dir": r["dir"], **r["scores"]} for r in a["runs"]]} for n, a in arms.items()}
        args.out.write_text(json.dumps({"arms": serialisable, "winners": chosen,
                                        "halves": {h: len(t) for h, t in halves.items()}}, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot(arms, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
