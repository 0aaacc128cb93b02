"""Learning-rate transfer across widths: does the best learning rate of the published recipe move
with the width in the standard parametrization, and stay put under µP?

    python experiments/recipe_study/transfer.py --results experiments/recipe_study/results.json \
        [--plot experiments/recipe_study/transfer.png]

It reads what `study.py --out` wrote (every run scored on the held-out report and selection
halves) and takes the settings of the width proxies (`proxy-64@400/32-true`, `proxy-128@...`:
the same depth, tokens and precision, only the width differs). For each arm (`published`: the
standard parametrization; `mup`: recipe_switch=mup) and width it gives the learning-rate curve
(selection-half loss, seed 1), the best grid point (flagged when on the grid's edge) and the
fitted optimum (a parabola in log lr through the best point and its neighbours); then how far
the optimum moves from the narrowest width to the widest, in grid steps (x2 each) and as the
exponent of the fitted optimum against the width. Seeds at the best points come from study.py's
tables (its `seeds` per setting).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

# The standard parametrization, µP, and µP with a zero-initialised head (recipe_switch=zero_head)
# come first; then µP at each input or output multiplier (`mup+in4`: model.input_multiplier=4).
ARMS = ("published", "mup", "mup+zero_head")
TITLES = {"published": "standard parametrization", "mup": "µP (base width 768)",
          "mup+zero_head": "µP, head initialised at zero"}
# The recipe study on µP (item 4 of issue 29) measures each arm against tuned published (the
# standard parametrization, tuned at each width) and against µP + input multiplier 16 alone,
# which ttl_160m_modern already is: an arm joins it only when it beats both.
REFERENCES = ("published", "mup+in16")


MULTIPLIER = re.compile(r"(in|out)(\d[\d.e+-]*)")


def arm_title(arm: str) -> str:
    """A panel's title: the arm in words."""
    switches, multipliers = multipliers_of(arm)
    words = ", ".join(f"{'input' if name == 'in' else 'output'} multiplier {value:g}"
                      for name, value in multipliers)
    return TITLES.get(switches, switches) + (f", {words}" if words else "")


def multipliers_of(arm: str) -> tuple[str, list[tuple[str, float]]]:
    """An arm's switches, and its µP multipliers as (in or out, value): `mup+in4` -> mup, [(in, 4)]."""
    parts = arm.split("+")
    found = [m for part in parts if (m := MULTIPLIER.fullmatch(part))]
    return "+".join(p for p in parts if not MULTIPLIER.fullmatch(p)), [(m[1], float(m[2])) for m in found]


def arms_in(by_width: dict[int, dict]) -> list[str]:
    """The arms with runs at any width: ARMS' order first, then the others by name."""
    found = {arm for arms in by_width.values() for arm in arms}
    return [a for a in ARMS if a in found] + sorted(found - set(ARMS), key=multipliers_of)


def proxy_settings(settings: dict[str, dict]) -> dict[str, dict[int, dict]]:
    """{tail: {width: arms}} for the proxy settings, grouped by what follows the model name
    (`@400/32-true`): only runs of equal steps and precision are compared."""
    groups: dict[str, dict[int, dict]] = {}
    for name, arms in settings.items():
        model, _, tail = name.partition("@")
        if model.startswith("proxy-"):
            groups.setdefault(tail, {})[int(model.split("-")[1])] = arms
    return groups


def transfer_rows(by_width: dict[int, dict]) -> dict[str, dict]:
    """Per arm: each width's curve, best and fitted lr, and the shift from narrowest to widest."""
    out = {}
    for arm in arms_in(by_width):
        widths = sorted(w for w, arms in by_width.items() if arm in arms and arms[arm].get("lr_curve"))
        if not widths:
            continue
        rows = {w: {"curve": by_width[w][arm]["lr_curve"], "best_lr": by_width[w][arm]["best_lr"],
                    "edge": by_width[w][arm]["edge"], "fitted_lr": by_width[w][arm].get("fitted_lr"),
                    "seeds": by_width[w][arm].get("seeds"), "report_loss": by_width[w][arm]["report_loss"],
                    "selection_loss": by_width[w][arm]["selection_loss"]}
                for w in widths}
        narrow, wide = rows[widths[0]], rows[widths[-1]]
        summary = {"widths": widths, "rows": rows,
                   "grid_steps": math.log2(wide["best_lr"] / narrow["best_lr"]) if len(widths) > 1 else 0.0}
        fitted = [(w, rows[w]["fitted_lr"]) for w in widths if rows[w]["fitted_lr"]]
        if len(fitted) >= 2:
            # Least squares slope of log(fitted lr) against log(width).
            xs, ys = [math.log(w) for w, _ in fitted], [math.log(lr) for _, lr in fitted]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            summary["exponent"] = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
                                   / sum((x - mx) ** 2 for x in xs))
            summary["fitted_shift"] = math.log2(fitted[-1][1] / fitted[0][1])
        out[arm] = summary
    return out


def table(transfer: dict[str, dict]) -> str:
    """Markdown: per arm and width, the selection loss at each lr, the best and fitted lr."""
    lrs = sorted({p["lr"] for t in transfer.values() for r in t["rows"].values() for p in r["curve"]})
    lines = ["| arm | width | " + " | ".join(f"{lr:.2e}" for lr in lrs) + " | best lr | fitted optimum |",
             "|---|---|" + "---|" * (len(lrs) + 2)]
    for arm, t in transfer.items():
        for width, row in t["rows"].items():
            losses = {p["lr"]: p["selection_loss"] for p in row["curve"]}
            cells = [("**%.4f**" if lr == row["best_lr"] else "%.4f") % losses[lr] if lr in losses else "-"
                     for lr in lrs]
            fitted = f"{row['fitted_lr']:.2e}" if row["fitted_lr"] else "-"
            lines.append(f"| {arm} | {width} | " + " | ".join(cells)
                         + f" | {row['best_lr']:.2e}{' (edge)' if row['edge'] else ''} | {fitted} |")
    lines += ["", "| arm | widths | best lr moves (grid steps of x2) | fitted optimum moves (x2 steps) | "
              "exponent of the fitted optimum in the width |", "|---|---|---|---|---|"]
    for arm, t in transfer.items():
        if len(t["widths"]) < 2:  # run at one width only: nothing moves
            continue
        exponent = f"{t['exponent']:+.2f}" if "exponent" in t else "-"
        fitted = f"{t['fitted_shift']:+.2f}" if "fitted_shift" in t else "-"
        lines.append(f"| {arm} | {t['widths'][0]}-{t['widths'][-1]} | {t['grid_steps']:+.0f} | {fitted} | "
                     f"{exponent} |")
    return "\n".join(lines)


def seed_table(transfer: dict[str, dict]) -> str:
    """Markdown: each arm and width with more than one seed at its best lr, the selection and
    report losses per seed (mean, spread)."""
    lines = ["| arm | width | best lr | seeds | selection loss per seed | mean (max - min) | "
             "report loss mean (max - min) |", "|---|---|---|---|---|---|---|"]
    for arm, t in transfer.items():
        for width, row in t["rows"].items():
            if len(row["seeds"] or []) < 2:
                continue
            sel, rep = row["selection_loss"], row["report_loss"]
            lines.append(f"| {arm} | {width} | {row['best_lr']:.2e} | {', '.join(map(str, row['seeds']))} | "
                         + ", ".join(f"{v:.4f}" for v in sel["values"])
                         + f" | {sel['mean']:.4f} ({sel['max'] - sel['min']:.4f}) | "
                         f"{rep['mean']:.4f} ({rep['max'] - rep['min']:.4f}) |")
    return "\n".join(lines)


def plot(transfer: dict[str, dict], path: Path, title: str) -> None:
    """Selection-half loss against the peak lr, one panel per arm, one line per width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(transfer), figsize=(5.2 * len(transfer), 4.0), squeeze=False, sharey=True)
    # One colour per width across the panels.
    widths = sorted({w for t in transfer.values() for w in t["widths"]})
    colour_of = dict(zip(widths, plt.cm.viridis([i / max(1, len(widths) - 1) for i in range(len(widths))]),
                         strict=True))
    for ax, (arm, t) in zip(axes[0], transfer.items(), strict=True):
        for width in t["widths"]:
            colour = colour_of[width]
            row = t["rows"][width]
            ax.plot([p["lr"] for p in row["curve"]], [p["selection_loss"] for p in row["curve"]], marker="o",
                    color=colour, label=f"width {width}")
            best = next(p for p in row["curve"] if p["lr"] == row["best_lr"])
            ax.plot([best["lr"]], [best["selection_loss"]], marker="*", ms=14, color=colour)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("peak learning rate (model.recipe.lr)")
        ax.set_title(arm_title(arm))
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("held-out loss, selection half (nats/token)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def study_module():
    """study.py beside this script (beyond_spread: one definition of the seed-spread rule)."""
    path = Path(__file__).resolve().parent / "study.py"
    spec = importlib.util.spec_from_file_location("recipe_study", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recipe_study", module)
    spec.loader.exec_module(module)
    return module


def gains(transfer: dict[str, dict], references: tuple[str, ...] = REFERENCES) -> dict[str, dict]:
    """Per arm seeded (two seeds or more) at some width: at each width its report-half loss and
    its difference from each reference arm there (negative: a gain), marked when beyond the seed
    spread; and, per reference, whether the gain grows or shrinks from the narrowest width that
    both ran to the widest."""
    beyond_spread = study_module().beyond_spread
    out = {}
    for arm, t in transfer.items():
        if arm == references[0] or not any(len(r["seeds"] or []) >= 2 for r in t["rows"].values()):
            continue
        widths = {}
        for width, row in t["rows"].items():
            against = {ref: (row["report_loss"]["mean"] - base["report_loss"]["mean"],
                             beyond_spread(row["report_loss"], base["report_loss"]))
                       for ref in references if ref != arm and ref in transfer
                       and (base := transfer[ref]["rows"].get(width))}
            widths[width] = {"lr": row["best_lr"], "seeds": row["seeds"], "loss": row["report_loss"],
                             "against": against}
        trend = {}
        for ref in references:
            both = [w for w in sorted(widths) if ref in widths[w]["against"]]
            if len(both) >= 2:
                narrow, wide = (widths[w]["against"][ref] for w in (both[0], both[-1]))
                trend[ref] = {"widths": (both[0], both[-1]), "deltas": (narrow[0], wide[0]),
                              "gain": "grows" if wide[0] < narrow[0] else "shrinks",
                              "beyond_spread_at_both": narrow[1] and wide[1]}
        out[arm] = {"widths": widths, "trend": trend}
    return out


def gain_table(found: dict[str, dict], references: tuple[str, ...] = REFERENCES) -> str:
    """Markdown: each seeded arm's report loss per width against each reference, then the trends."""
    def cell(delta: tuple[float, bool] | None) -> str:
        return "-" if delta is None else f"{delta[0]:+.4f}" + (" **beyond spread**" if delta[1] else "")

    lines = ["| arm | width | lr | seeds | report loss mean (max - min) | "
             + " | ".join(f"Δ vs {ref}" for ref in references) + " |",
             "|---|---|---|---|---|" + "---|" * len(references)]
    for arm, g in found.items():
        for width, row in sorted(g["widths"].items()):
            loss = row["loss"]
            lines.append(f"| {arm} | {width} | {row['lr']:.2e} | {', '.join(map(str, row['seeds']))} | "
                         f"{loss['mean']:.4f} ({loss['max'] - loss['min']:.4f}) | "
                         + " | ".join(cell(row["against"].get(ref)) for ref in references) + " |")
    lines += ["", "| arm | against | widths | Δ narrow | Δ wide | gain with the width | "
              "beyond spread at both |",
              "|---|---|---|---|---|---|---|"]
    for arm, g in found.items():
        for ref, t in g["trend"].items():
            lines.append(f"| {arm} | {ref} | {t['widths'][0]}-{t['widths'][1]} | {t['deltas'][0]:+.4f} | "
                         f"{t['deltas'][1]:+.4f} | {t['gain']} | {t['beyond_spread_at_both']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="study.py's --out JSON")
    parser.add_argument("--plot", type=Path, help="write the learning-rate curves per width (PNG)")
    args = parser.parse_args()
    settings = json.loads(args.results.read_text())["settings"]
    for tail, by_width in proxy_settings(settings).items():
        transfer = transfer_rows(by_width)
        print(f"## proxies @{tail}\n\n{table(transfer)}\n\n{seed_table(transfer)}\n\n"
              f"{gain_table(gains(transfer))}\n")
        wide = {arm: t for arm, t in transfer.items() if len(t["widths"]) > 1}
        if args.plot and wide:  # a panel per arm run at two widths or more
            plot(wide, args.plot, f"proxies @{tail}: seed 1")
            print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
