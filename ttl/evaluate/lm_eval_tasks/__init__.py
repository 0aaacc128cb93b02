"""lm-evaluation-harness task definitions shipped with ttl (lm-eval's own YAML task format).

- `ttl_enem`, `ttl_oab` (group `ttl_pt_exams`): Portuguese multiple-choice exams scored by the
  log-likelihood of the answer letter, 3-shot; data only from `<tasks_dir>/{enem,oab}/`.
- The benchmark tables of TeenyTinyLlama's model card and Tucano's (catalog.py): group
  `ttl_card_pt` (ASSIN2 RTE/STS, BLUEX, ENEM, FAQuAD-NLI, HateBR, OAB Exams, as the Portuguese
  harness eduagarcia/lm-evaluation-harness-pt runs them; pt_benchmark.py), group
  `ttl_card_translated` (ARC, HellaSwag, MMLU, TruthfulQA in Portuguese, as Okapi's harness runs
  them; okapi.py) and group `ttl_tucano` (CALAME-PT, LAMBADA-PT; last_word.py). Each reads its
  Hub dataset, or `<tasks_dir>/<folder>/<split>.jsonl` when that folder exists.
- ARC, HellaSwag and TruthfulQA read the Hub as upstream lm-eval's own tasks (`arc_pt`,
  `hellaswag_pt`, `truthfulqa_pt_mc2`): ttl's `ttl_arc_pt`, `ttl_hellaswag_pt`,
  `ttl_truthfulqa_pt` read only local copies, and the harness's suites pick one or the other
  (upstream.py).

`tasks_dir` is given as task metadata:

    python -m ttl.evaluate harness checkpoints=runs/quickstart suite=card tasks_dir=DIR
    lm_eval --model hf --model_args pretrained=runs/quickstart/step-150 --tasks ttl_card_pt \\
        --include_path ttl/evaluate/lm_eval_tasks --metadata '{"tasks_dir": "DIR"}'
"""

from pathlib import Path

from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES, LOCAL_TASKS, SUITES, TASK_DATA, TTL_GROUPS

TASKS_PATH = Path(__file__).resolve().parent
LOCAL_GROUP = "ttl_pt_exams"

__all__ = ["CARD_TABLES", "LOCAL_GROUP", "LOCAL_TASKS", "SUITES", "TASKS_PATH", "TASK_DATA", "TTL_GROUPS"]
