"""lm-evaluation-harness task definitions shipped with ttl (lm-eval's own YAML task format).

`ttl_enem` and `ttl_oab` are Portuguese multiple-choice exams (ENEM, the Brazilian Bar exam)
scored by the log-likelihood of the answer letter, few-shot from the exams' train split. Their
data is not shipped; the tasks read `<tasks_dir>/enem/{train,test}.jsonl` and
`<tasks_dir>/oab/{train,test}.jsonl`, with `tasks_dir` given as task metadata:

    python -m ttl.evaluate harness checkpoints=runs/quickstart/step-150 tasks_dir=../shared/data/tasks
    lm_eval --model hf --model_args pretrained=runs/quickstart/step-150 --tasks ttl_enem \\
        --include_path ttl/lm_eval_tasks --metadata '{"tasks_dir": "../shared/data/tasks"}'
"""

from pathlib import Path

TASKS_PATH = Path(__file__).resolve().parent
LOCAL_TASKS = ("ttl_enem", "ttl_oab")
LOCAL_GROUP = "ttl_pt_exams"
