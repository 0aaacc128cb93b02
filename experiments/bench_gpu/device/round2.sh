#!/usr/bin/env bash
# Issue 14's device call, run on the GPU machine from the repository root, with `.whl` and
# `.carry` carried (bash experiments/bench_gpu/device/prepare.sh makes them here first):
#   1. levers.py --plan round2: ttl's step against the loss kernels (ttl's chunked loss,
#      cut-cross-entropy, liger's fused linear cross-entropy), CUDA graphs, micro-batches of 8
#      and 16, the original-style baseline and ttl again, after a profile of the compiled step;
#   2. the rehearsal of the paper run: python -m ttl.train model=160m trainer=h100 on the
#      Hub-layout copy for REHEARSAL_STEPS steps (bf16, compile, fused AdamW, exports every 100
#      steps, card, emissions, offline W&B), and its logged tokens/s against the bench's.
# Everything it writes lands in $OUT. LEVERS_BUDGET_S and REHEARSAL_STEPS size it.
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline \
    CODECARBON_LOG_LEVEL=error TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD:$PWD/experiments/bench_gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, lightning; print(torch.__version__, transformers.__version__, lightning.__version__)" \
    | tee -a "$OUT/gpu.txt"
timeout $(( ${LEVERS_BUDGET_S:-300} + 120 )) python3 experiments/bench_gpu/levers.py --plan round2 --profile-first \
    --budget-s "${LEVERS_BUDGET_S:-300}" --out "$OUT/round2.json" 2>&1 | grep -v "it/s" | tee "$OUT/round2.log"
timeout 240 python3 -m ttl.train model=160m trainer=h100 \
    data.path=.carry/pt-corpus-instruct-layout tokenizer.path=.carry/tokenizer-32k \
    trainer.max_steps="${REHEARSAL_STEPS:-300}" model.recipe.checkpoint_every_n_steps=100 model.recipe.eval_every_n_steps=100 \
    trainer.log_every_n_steps=20 paths.runs_dir=/tmp/runs paths.cache_dir=/tmp/cache \
    run_name=rehearsal 2>&1 | grep -v "it/s" | tee "$OUT/rehearsal.log"
python3 experiments/bench_gpu/device/rehearsal_report.py /tmp/runs/rehearsal "$OUT/round2.json" \
    | tee "$OUT/rehearsal.json"
cp /tmp/runs/rehearsal/step-*/README.md "$OUT/rehearsal-card.md" 2>/dev/null
cp "$OUT"/round2.profile.txt "$OUT/profile.txt" 2>/dev/null; rm -f "$OUT"/round2.profile.txt
