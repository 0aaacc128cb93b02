"""Wall time of the model card's benchmark suite (`python -m ttl.evaluate harness suite=card`) for
one checkpoint of a 160m model: measured on this machine with `--limit` questions per task,
projected to the full suite on this CPU and on an H100 / A100.

The model is conf/model/160m.yaml's architecture with random weights (162,417,408 parameters,
a 32,000-token tokenizer); random weights cost the same as trained ones, except that they never
stop generating early (see "decode steps" below). Each task runs through lm-eval exactly as the
harness runs it (HFLM, fp32, batch size 1 so that each request is timed alone); `lm.loglikelihood`
and `lm.generate_until` are timed, and their tokens counted with the tokenizer.

Projection (printed, with every input):
- cost model, fitted by least squares over the 13 tasks' measurements:
  seconds = prompt tokens / prefill rate + decode steps x seconds per decode step;
- full-suite token counts: exact (every document's prompt, tokenized) for the tasks with a real
  local copy in --tasks-dir (ASSIN2 RTE/STS, ENEM, FAQuAD-NLI, HateBR, OAB), scaled to the Hub
  split's size; estimates (ESTIMATES below: Hub sizes and prompt lengths) for the rest, which
  run here on the test fixtures;
- decode steps: every generation at max_gen_toks (an upper bound: random weights never stop),
  and a lower bound for a trained model that answers and stops (3 steps; 10 for the last-word
  tasks, which have no stop sequence);
- GPU: prefill from FLOPs (2N + 4 x layers x hidden x context per token, N without the input
  embedding) at MFU_GPU of the dense bf16 peak; decode at GPU_DECODE_STEP_S per step, batch
  --gpu-batch-size (Hugging Face generate is launch-bound for a 12-layer model).

    python -m ttl.tokenizer data_path=DATA vocab_size=32000 output_dir=/tmp/pt-32k
    python experiments/bench_harness.py --tokenizer /tmp/pt-32k --limit 2 [--tasks-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "tasks"
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
# After the environment: bench_common imports lightning, which reads HF_HUB_OFFLINE on import.
from bench_common import cpu_name  # noqa: E402

PEAK_BF16 = {"H100": 989.4e12, "A100": 312e12}  # dense bf16 FLOP/s (SXM)
# Assumed GPU efficiency. Prefill: Hugging Face's eager Llama reached 19.7% MFU in training on an
# H200 (experiments/bench_gpu, "baseline"); lm-eval's forward passes run the same eager model.
MFU_GPU = 0.20
# Assumed: one decode step of HF generate (12 layers, eager, KV cache) on a recent GPU.
GPU_DECODE_STEP_S = 0.010
# Documents per task in the Hub data the card used (the few-shot questions removed where the
# harness removes them), with where the count comes from.
FULL_DOCS = {
    "ttl_assin2_rte": (2448, "ASSIN2 test (official; = ttl's local copy)"),
    "ttl_assin2_sts": (2448, "ASSIN2 test"),
    "ttl_bluex": (719, "eduagarcia-temp/BLUEX_without_images: 724 rows - 5 shots"),
    "ttl_enem_challenge": (1427, "eduagarcia/enem_challenge: about 1,430 questions - 3 shots (unverified)"),
    "ttl_faquad_nli": (650, "ruanchaves/faquad-nli test"),
    "ttl_hatebr_offensive": (1400, "HateBR test"),
    "ttl_oab_exams": (2195, "eduagarcia/oab_exams: 2,210 rows - 15 shots"),
    "ttl_arc_pt": (1172, "ARC-Challenge test (English size; Okapi's pt may hold fewer)"),
    "ttl_hellaswag_pt": (10042, "HellaSwag validation (English size; upper bound)"),
    "ttl_mmlu_pt": (14042, "MMLU test (English size; upper bound)"),
    "ttl_truthfulqa_pt": (817, "TruthfulQA (English size)"),
    "ttl_calame_pt": (2076, "CALAME-PT all: 1,670 generated + 406 handwritten"),
    "ttl_lambada_pt": (5153, "TucanoBR/lambada-pt"),
}
# Prompt tokens for the tasks without a real local copy (estimates: words per example of the
# English originals, ~10% more words in Portuguese, x 1.26 tokens per word, the fertility of a
# 32k tokenizer trained on Pt-Corpus-Instruct's layout copy).
# Each: prompt tokens per request, requests per document, where the figure comes from.
ESTIMATES = {
    "ttl_bluex": ("enem", 1, "ENEM's measured mean (same prompt format, same kind of exam)"),
    "ttl_arc_pt": (1100, 4, "4 options x (25 shots x ~42 tokens + the question)"),
    "ttl_hellaswag_pt": (80, 4, "4 endings x (~55-token context + ~25-token ending)"),
    "ttl_mmlu_pt": (2048, 4, "4 choices x 2,048 (25 shots of ~100 tokens overflow the context)"),
    "ttl_truthfulqa_pt": ("truthfulqa", 7.2, "7.2 MC2 choices x (the English primer + ~35 tokens)"),
    "ttl_calame_pt": (23, 1, "~18 words"),
    "ttl_lambada_pt": (107, 1, "~85 words (LAMBADA passages)"),
}
STOPPING_STEPS = 3  # a trained model's "Sim\n\n", "B\n\n", "4,5\n\n"


def tasks_dir_with_fixtures(real: Path | None, work: Path) -> tuple[Path, set[str]]:
    """A tasks_dir of links: the real copy of each folder when --tasks-dir has it, else the fixture."""
    from ttl.evaluate.lm_eval_tasks.catalog import TASK_DATA

    out, real_folders = work / "tasks", set()
    out.mkdir()
    for folder in {d.folder for d in TASK_DATA.values()}:
        source = real / folder if real is not None and (real / folder).is_dir() else FIXTURES / folder
        if source.is_dir():
            (out / folder).symlink_to(source.resolve())
            real_folders |= {folder} if source.parent != FIXTURES else set()
    return out, real_folders


def build(tokenizer_dir: Path, size: str = "160m"):
    """conf/model/<size>.yaml's architecture, random weights (seed 0), and the tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from ttl.model import build_model, llama_config, matmul_parameters
    from ttl.train.config import model_preset

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_cfg = model_preset(size)
    model_cfg["vocab_size"] = len(tokenizer)
    model = build_model(llama_config(model_cfg)).eval()
    return model, tokenizer, matmul_parameters(model), model_cfg


def time_requests(lm, tokenizer, max_length: int) -> list[dict]:
    """Wrap lm.loglikelihood / lm.generate_until: per call, seconds, prompt tokens, decode steps."""
    calls: list[dict] = []

    def ids_of(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def count(text: str) -> int:
        return len(ids_of(text))

    def wrap(name):
        original = getattr(lm, name)

        def timed(requests, *args, **kwargs):
            start = time.perf_counter()
            out = original(requests, *args, **kwargs)
            seconds = time.perf_counter() - start
            prompt = steps = 0
            # lm-eval runs one forward pass per distinct context + continuation[:-1] (choices of
            # one token share it): count the tokens of those passes.
            forwards = set()
            for request, response in zip(requests, out, strict=True):
                if name == "loglikelihood":
                    context, continuation = request.args
                    ids = ids_of(context) + ids_of(continuation)
                    forwards.add(tuple(ids[-max_length - 1:-1]))
                else:
                    context, gen = request.args
                    limit = gen.get("max_gen_toks", 256)
                    prompt += min(count(context), max_length - limit)
                    steps += min(count(response) + 1, limit)
            prompt += sum(len(key) + 1 for key in forwards)
            calls.append({"kind": name, "requests": len(requests), "seconds": seconds,
                          "prompt_tokens": prompt, "decode_steps": steps})
            return out

        setattr(lm, name, timed)

    wrap("loglikelihood")
    wrap("generate_until")
    return calls


def full_prompt_tokens(task, tokenizer, max_length: int) -> tuple[float, int]:
    """Mean prompt tokens per document over every document of a loaded task, and their number."""
    shots = task.config.num_fewshot or 0
    gen = task.config.generation_kwargs or {}
    limit = max_length - gen.get("max_gen_toks", 0)
    total = 0
    for doc in task.eval_docs:
        ids = tokenizer(task.fewshot_context(doc, shots), add_special_tokens=False)["input_ids"]
        total += min(len(ids), limit)
    return total / len(task.eval_docs), len(task.eval_docs)


def fit(measured: list[dict]) -> tuple[float, float]:
    """Least squares seconds = a x prompt tokens + b x decode steps (a, b >= 0)."""
    import numpy as np

    x = np.array([[m["prompt_tokens"], m["decode_steps"]] for m in measured], dtype=float)
    y = np.array([m["seconds"] for m in measured])
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    return max(a, 1e-9), max(b, 0.0)


def main() -> None:
    """Measure every card task with --limit questions, print the projection, save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="a 32k tokenizer directory")
    parser.add_argument("--tasks-dir", type=Path, default=ROOT.parent / "shared" / "data" / "tasks",
                        help="real local copies (missing folders come from tests/fixtures/tasks)")
    parser.add_argument("--limit", type=int, default=2, help="questions per task")
    parser.add_argument("--model", default="160m", help="conf/model/<name>.yaml (tiny: a smoke test)")
    parser.add_argument("--gpu-batch-size", type=int, default=8, help="lm-eval batch size assumed on GPU")
    parser.add_argument("--out", type=Path, default=Path("bench_harness.json"))
    args = parser.parse_args()

    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    from ttl.evaluate.harness import task_manager
    from ttl.evaluate.lm_eval_tasks.catalog import SUITES, TASK_DATA
    from ttl.evaluate.lm_eval_tasks.okapi import QA_PROMPT

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="bench-harness-"))
    real = args.tasks_dir if args.tasks_dir.is_dir() else None
    tasks_dir, real_folders = tasks_dir_with_fixtures(real, work)
    start = time.perf_counter()
    model, tokenizer, n_matmul, model_cfg = build(args.tokenizer, args.model)
    build_s = time.perf_counter() - start
    max_length = model_cfg["max_position_embeddings"]
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1, max_length=max_length)
    calls = time_requests(lm, tokenizer, max_length)
    tasks = list(SUITES["card"])
    manager = task_manager(tasks, str(tasks_dir))
    loaded = manager.load(tasks)["tasks"]

    measured = []
    for name in tasks:
        first = len(calls)
        start = time.perf_counter()
        lm_eval.simple_evaluate(model=lm, tasks=[name], limit=args.limit, task_manager=manager,
                                log_samples=False, random_seed=0, numpy_random_seed=0,
                                torch_random_seed=0, fewshot_random_seed=0)
        wall = time.perf_counter() - start
        mine = calls[first:]
        row = {"task": name, "wall_s": wall, "seconds": sum(c["seconds"] for c in mine),
               "requests": sum(c["requests"] for c in mine),
               "prompt_tokens": sum(c["prompt_tokens"] for c in mine),
               "decode_steps": sum(c["decode_steps"] for c in mine), "docs": args.limit,
               "data": "real" if TASK_DATA[name].folder in real_folders else "fixture"}
        measured.append(row)
        print(f"{name:22s} {row['data']:7s} {args.limit} docs {row['requests']:3d} requests "
              f"{row['prompt_tokens']:7,d} prompt tokens {row['decode_steps']:4d} decode steps "
              f"{row['seconds']:7.1f} s model ({wall:6.1f} s wall)", flush=True)

    a, b = fit(measured)
    for row in measured:
        row["fitted_s"] = a * row["prompt_tokens"] + b * row["decode_steps"]
    layers, hidden = model_cfg["num_hidden_layers"], model_cfg["hidden_size"]

    # Full-suite token counts per task.
    per_doc = {}
    for name in tasks:
        task = loaded[name]
        if TASK_DATA[name].folder in real_folders:
            mean, local_docs = full_prompt_tokens(task, tokenizer, max_length)
            per_doc[name] = (mean, 1, f"measured on all {local_docs:,} local documents")
    primer = len(tokenizer(QA_PROMPT, add_special_tokens=False)["input_ids"])
    for name, (value, requests, note) in ESTIMATES.items():
        if name in per_doc:
            continue
        if value == "enem":
            value = per_doc.get("ttl_enem_challenge", (1500, 1, ""))[0]
        elif value == "truthfulqa":
            value = primer + 35
        per_doc[name] = (min(float(value), max_length) * requests, requests, f"estimate: {note}")
    for row in measured:  # no real copy and no estimate: the fixture's own prompts
        if row["task"] not in per_doc:
            per_doc[row["task"]] = (row["prompt_tokens"] / row["docs"], row["requests"] / row["docs"],
                                    "fixture mean (no real copy)")

    projection, totals = [], {"cpu_upper_h": 0.0, "cpu_lower_h": 0.0, "H100_h": 0.0, "A100_h": 0.0,
                              "prompt_tokens": 0.0}
    for name in tasks:
        docs, docs_note = FULL_DOCS[name]
        gen = loaded[name].config.generation_kwargs
        max_steps = gen.get("max_gen_toks", 0) if loaded[name].config.output_type == "generate_until" else 0
        low_steps = 0 if not max_steps else (max_steps if name in SUITES["tucano"] else STOPPING_STEPS)
        mean_prompt, requests, prompt_note = per_doc[name]
        prompt_tokens = docs * mean_prompt
        context = min(mean_prompt / requests, max_length)  # tokens of one request
        fwd_flops = 2 * n_matmul + 4 * layers * hidden * context
        cpu_upper = a * prompt_tokens + b * docs * max_steps
        cpu_lower = a * prompt_tokens + b * docs * low_steps
        gpu = {}
        for card, peak in PEAK_BF16.items():
            gpu[card] = (prompt_tokens * fwd_flops / (peak * MFU_GPU)
                         + docs * max_steps / args.gpu_batch_size * GPU_DECODE_STEP_S)
        projection.append({"task": name, "docs": docs, "docs_source": docs_note,
                           "prompt_tokens_per_doc": mean_prompt, "prompt_tokens_source": prompt_note,
                           "max_decode_steps": max_steps,
                           "cpu_upper_s": cpu_upper, "cpu_lower_s": cpu_lower,
                           "H100_s": gpu["H100"], "A100_s": gpu["A100"]})
        totals["cpu_upper_h"] += cpu_upper / 3600
        totals["cpu_lower_h"] += cpu_lower / 3600
        totals["H100_h"] += gpu["H100"] / 3600
        totals["A100_h"] += gpu["A100"] / 3600
        totals["prompt_tokens"] += prompt_tokens

    cpu_flops = 2 * n_matmul / a  # achieved FLOP/s in prefill on this CPU (weights only)
    print(f"\nfit: prefill {1 / a:,.0f} prompt tokens/s, decode {b:.3f} s/step "
          f"(CPU achieved {cpu_flops / 1e9:.1f} GFLOP/s in prefill)")
    for row in measured:
        print(f"  {row['task']:22s} measured {row['seconds']:7.1f} s, fitted {row['fitted_s']:7.1f} s")
    print(f"\n{'task':22s} {'docs':>6s} {'prompt tok/doc':>14s} {'CPU h (upper)':>13s} "
          f"{'CPU h (lower)':>13s} {'H100 min':>8s} {'A100 min':>8s}")
    for p in projection:
        print(f"{p['task']:22s} {p['docs']:6,d} {p['prompt_tokens_per_doc']:14,.0f} "
              f"{p['cpu_upper_s'] / 3600:13.1f} {p['cpu_lower_s'] / 3600:13.1f} "
              f"{p['H100_s'] / 60:8.1f} {p['A100_s'] / 60:8.1f}")
    print(f"{'total':22s} {sum(p['docs'] for p in projection):6,d} {totals['prompt_tokens']:14,.0f} "
          f"{totals['cpu_upper_h']:13.1f} {totals['cpu_lower_h']:13.1f} {totals['H100_h'] * 60:8.1f} "
          f"{totals['A100_h'] * 60:8.1f}")
    print(f"GPU/CPU prefill ratio from FLOPs: H100 {PEAK_BF16['H100'] * MFU_GPU / cpu_flops:,.0f}x, "
          f"A100 {PEAK_BF16['A100'] * MFU_GPU / cpu_flops:,.0f}x (MFU {MFU_GPU:.0%} assumed)")
    for p in projection:
        print(f"  {p['task']}: {p['docs_source']}; {p['prompt_tokens_source']}")

    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "load_average_at_end": os.getloadavg(), "python": platform.python_version(),
               "torch": torch.__version__, "lm_eval": lm_eval.__version__}
    record = {"machine": machine, "limit": args.limit, "build_s": build_s, "n_matmul_params": n_matmul,
              "fit": {"s_per_prompt_token": a, "s_per_decode_step": b},
              "assumed": {"mfu_gpu": MFU_GPU, "gpu_decode_step_s": GPU_DECODE_STEP_S,
                          "gpu_batch_size": args.gpu_batch_size},
              "measured": measured, "projection": projection, "totals": totals}
    args.out.write_text(json.dumps(record, indent=2))
    print(f"machine: {machine}\nresults: {args.out}")


if __name__ == "__main__":
    main()
