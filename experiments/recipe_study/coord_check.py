"""The coordinate check (µP's standard test, Yang et al. 2022): the RMS of each layer's output and of
the logits over the first training steps, at several widths, in the standard parametrization and
under µP (ttl.train.parametrization). In the standard parametrization the logits and the layers'
outputs grow with the width as training starts (Adam's updates add up over more coordinates);
under µP they stay the same size at every width, which is what lets a learning rate tuned at one
width serve at another.

    python experiments/recipe_study/coord_check.py --widths 64 128 256 512 --steps 10 \
        --plot experiments/recipe_study/coord_check.png --out experiments/recipe_study/coord_check.json

Every model has the 160m's shape ratios (head size 64, MLP 4x) and the same depth; each trains
with ttl's own module and optimizer (AdamW, one learning rate) on the same batches of the sample
corpus that ships with ttl, seed by seed; the RMS is averaged over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from functools import partial
from pathlib import Path

import torch

from ttl.model import llama_config
from ttl.train.module import CausalLMModule
from ttl.train.optim import build_adamw
from ttl.train.parametrization import Mup, width_multiplier

BASE_WIDTH = 768


def proxy_architecture(width: int, layers: int, vocab_size: int, context: int) -> dict:
    """The 160m's shape ratios (head size 64, MLP 4x) at `width`."""
    return dict(hidden_size=width, num_hidden_layers=layers, num_attention_heads=max(1, width // 64),
                intermediate_size=4 * width, vocab_size=vocab_size, max_position_embeddings=context)


def sample_batches(vocab_size: int, context: int, batch_size: int, count: int,
                   seed: int) -> list[torch.Tensor]:
    """`count` batches of token ids from the shipped sample corpus, byte-level (ids < 256 fold into
    the vocabulary), so the check needs no tokenizer and no download."""
    from ttl.data.sources import sample_corpus_dir

    text = "\n".join(path.read_text() for path in sorted(sample_corpus_dir().glob("*.jsonl")))
    ids = torch.tensor(list(text.encode()[: 2_000_000]), dtype=torch.long) % vocab_size
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - context, (count, batch_size), generator=generator)
    return [torch.stack([ids[s:s + context] for s in row.tolist()]) for row in starts]


def layer_outputs(model) -> tuple[dict[str, float], list]:
    """Hooks that record the RMS of the embedding's, each block's attention, MLP and residual
    output, and the logits, into the returned dict at every forward."""
    rms: dict[str, float] = {}

    def record(name):
        def hook(_module, _inputs, output):
            tensor = output[0] if isinstance(output, tuple) else output
            rms[name] = tensor.detach().float().pow(2).mean().sqrt().item()
        return hook

    modules = {"embedding": model.model.embed_tokens, "logits": model.lm_head}
    for index, layer in enumerate(model.model.layers):
        modules[f"layer{index}.attn"] = layer.self_attn
        modules[f"layer{index}.mlp"] = layer.mlp
        modules[f"layer{index}.out"] = layer
    handles = [module.register_forward_hook(record(name)) for name, module in modules.items()]
    return rms, handles


def coordinate_check(widths: list[int], parametrization: str, steps: int, lr: float, seeds: int = 2,
                     layers: int = 2, vocab_size: int = 256, context: int = 64,
                     batch_size: int = 8) -> dict[int, list[dict[str, float]]]:
    """For each width: per training step t (0 = before the first update), the mean over seeds of
    each layer's output RMS on that step's batch."""
    results: dict[int, list[dict[str, float]]] = {}
    for width in widths:
        per_seed = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            multiplier = width_multiplier(parametrization, width, BASE_WIDTH)
            mup = None if multiplier is None else Mup(multiplier)
            module = CausalLMModule(llama_config(proxy_architecture(width, layers, vocab_size, context)),
                                    partial(build_adamw, lr=lr, weight_decay=0.0), None,
                                    tokens_per_step=batch_size * context, mup=mup)
            optimizer = module.configure_optimizers()
            rms, handles = layer_outputs(module.model)
            history = []
            for batch in sample_batches(vocab_size, context, batch_size, steps, seed):
                loss = module(batch)
                history.append(dict(rms))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            for handle in handles:
                handle.remove()
            per_seed.append(history)
        results[width] = [{name: statistics.fmean(run[t][name] for run in per_seed)
                           for name in per_seed[0][t]} for t in range(steps)]
    return results


def growth(results: dict[int, list[dict[str, float]]], name: str, step: int) -> float:
    """How much `name`'s RMS at `step` grows from the narrowest width to the widest (a ratio)."""
    widths = sorted(results)
    return results[widths[-1]][step][name] / results[widths[0]][step][name]


def plot(checks: dict[str, dict[int, list[dict[str, float]]]], path: Path, names: list[str]) -> None:
    """One panel per (parametrization, layer): RMS against width, one line per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(checks), len(names), figsize=(3.2 * len(names), 3.0 * len(checks)),
                             squeeze=False)
    for row, (parametrization, results) in enumerate(checks.items()):
        widths = sorted(results)
        steps = len(results[widths[0]])
        colours = plt.cm.viridis([t / max(1, steps - 1) for t in range(steps)])
        for col, name in enumerate(names):
            ax = axes[row][col]
            for t in range(steps):
                ax.plot(widths, [results[w][t][name] for w in widths], marker="o", ms=3, color=colours[t],
                        label=f"step {t}" if t in (0, steps - 1) else None)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{parametrization}: {name}", fontsize=9)
            ax.set_xlabel("width")
            if col == 0:
                ax.set_ylabel("output RMS")
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checks = {p: coordinate_check(args.widths, p, args.steps, args.lr, args.seeds, args.layers)
              for p in ("standard", "mup")}
    last = args.steps - 1
    names = ["embedding", "layer0.attn", "layer0.mlp", f"layer{args.layers - 1}.out", "logits"]
    print(f"output RMS at step {last} (lr {args.lr:g}, {args.seeds} seeds); growth = widest / narrowest")
    print("| parametrization | layer | " + " | ".join(f"width {w}" for w in args.widths) + " | growth |")
    print("|---|---|" + "---|" * (len(args.widths) + 1))
    for parametrization, results in checks.items():
        for name in names:
            values = " | ".join(f"{results[w][last][name]:.3g}" for w in args.widths)
            print(f"| {parametrization} | {name} | {values} | x{growth(results, name, last):.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"lr": args.lr, "steps": args.steps, "seeds": args.seeds,
                                        "layers": args.layers, "checks": checks}, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot(checks, args.plot, names)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
