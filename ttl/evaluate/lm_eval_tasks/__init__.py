"""lm-evaluation-harness task definitions shipped with ttl (lm-eval's own YAML task format): the
exams `ttl_enem`/`ttl_oab` (pt_exams.py) and the benchmark tables of TeenyTinyLlama's and
Tucano's model cards (catalog.py; pt_benchmark.py, okapi.py, last_word.py, upstream.py), as
docs/evaluation.md lists them. `tasks_dir` is given as task metadata:

    lm_eval --model hf --model_args pretrained=runs/quickstart/step-150 --tasks ttl_card_pt \\
        --include_path ttl/evaluate/lm_eval_tasks --metadata '{"tasks_dir": "DIR"}'
"""

from pathlib import Path

TASKS_PATH = Path(__file__).resolve().parent
