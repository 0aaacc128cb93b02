"""lm-evaluation-harness tasks shipped with ttl (lm-eval's YAML task format; docs/evaluation.md):
the exams (pt_exams.py) and the model cards' benchmark tables (catalog.py). `tasks_dir` comes as
task metadata (`lm_eval ... --include_path ttl/evaluate/lm_eval_tasks --metadata '{"tasks_dir": "DIR"}'`).
"""

from pathlib import Path

TASKS_PATH = Path(__file__).resolve().parent
