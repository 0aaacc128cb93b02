"""ARC, HellaSwag and TruthfulQA in Portuguese (the card's translated table): upstream lm-eval's
own okapi tasks `arc_pt`, `hellaswag_pt` and `truthfulqa_pt_mc2` when the data comes from the
Hub, ttl's `ttl_arc_pt`, `ttl_hellaswag_pt` and `ttl_truthfulqa_pt` (okapi.py) on the local
copies a tasks_dir holds (`arc_pt/`, `hellaswag_pt/`, `truthfulqa_pt/`, in the Hub's layout).

lm-eval ships these benchmarks with Okapi's data and prompts, so ttl runs them by name rather
than keeping a second definition in step with upstream; ttl's task files remain for offline
runs. `choose` picks ttl's task for a suite where `<tasks_dir>/<folder>/` holds JSONL files;
`with_card_shots` gives upstream's tasks the card's shot counts (their YAML sets none);
`tasks=[...]` runs the named tasks with their own settings. The card's columns (CARD_TABLES)
read either task's metric: `CardColumn.task`/`metric` upstream's, `offline` ttl's.

Upstream (lm-eval 0.4.13, lm_eval/tasks/okapi/) against ttl's task files:

ARC: `arc_pt` (arc_multilingual/_arc_yaml + arc_pt.yaml, version 2.0) vs ttl_arc_pt.yaml (1.0)
- Dataset: both alexandrainst/m_arc, config pt, test scored, few-shot examples from train
  (upstream's training_split; it also declares validation_split, unused while test exists).
- Shots: upstream's YAML sets none, so lm-eval runs it 0-shot (a global num_fewshot overrides
  it); ttl's is 25-shot (Okapi's, the card's). The suites set 25 on upstream's.
- Prompt: both "Question: <question>\nAnswer:", each option scored after " ", shots separated
  by a blank line. Upstream cleans the question and options (strip, " [title]" -> ". ", [...]
  spans dropped, double spaces collapsed); ttl keeps them verbatim.
- Choices: the non-empty option_a..option_e; target: the answer letter's index (ttl strips
  spaces around the letter first). Metrics: acc, acc_norm; the card reads acc_norm.

HellaSwag: `hellaswag_pt` (hellaswag_multilingual/_hellaswag_yaml + hellaswag_pt.yaml, 1.0) vs
ttl_hellaswag_pt.yaml (1.0)
- Dataset: both alexandrainst/m_hellaswag, config pt, split val scored, no training split.
- Shots: upstream's YAML sets none (0-shot by default, but a global num_fewshot overrides it);
  ttl's sets 0, which lm-eval never overrides. The suites set 0 on upstream's.
- Prompt, choices, target: the same, the cleaned "<activity_label>: <ctx_a> <Ctx_b>", the four
  cleaned endings, the label as an index (upstream `{{label.lstrip()}}`, ttl int(label)).
  Metrics: acc, acc_norm; the card reads acc_norm.

TruthfulQA: `truthfulqa_pt_mc2` (truthfulqa_multilingual/_truthfulqa_mc2_yaml, 2.0) vs
ttl_truthfulqa_pt.yaml (1.0)
- Dataset: both alexandrainst/m_truthfulqa, config pt, split val; 0-shot in both (upstream by
  default; the suites set 0 on it).
- Prompt: both Okapi's English six-question primer, then "\n\nQ: <question>\nA:"; upstream
  cleans the question as for ARC, ttl keeps it verbatim. Choices: mc2_targets_choices, verbatim.
- Metric: the normalised probability mass of the true answers (mc2_targets_labels == 1), named
  `acc` upstream and `mc2` by ttl (the card reads each). Upstream exponentiates the
  log-likelihoods as they are (nan when every choice's is below about -745); ttl subtracts the
  largest first, so it stays finite.

Upstream also marks the questions for decontamination checks, which change no score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ttl.evaluate.lm_eval_tasks.catalog import CARD_TABLES, TASK_DATA
from ttl.evaluate.lm_eval_tasks.loaders import local_folder

if TYPE_CHECKING:
    from lm_eval.api.task import Task
    from lm_eval.tasks import TaskManager

# Upstream lm-eval's task -> ttl's offline task for the same benchmark (from the card's columns).
OFFLINE: dict[str, str] = {c.task: c.offline[0] for table in CARD_TABLES.values() for c in table
                           if c.offline is not None}
# The card's shot counts for upstream's tasks (those of ttl's task files).
CARD_SHOTS: dict[str, int] = {"arc_pt": 25, "hellaswag_pt": 0, "truthfulqa_pt_mc2": 0}


def choose(tasks: Sequence[str], tasks_dir: str | None) -> list[str]:
    """`tasks` with each of upstream's tasks replaced by ttl's offline one where tasks_dir holds
    its copy (`<tasks_dir>/<folder>/` with JSONL files)."""
    return [OFFLINE[t] if t in OFFLINE and local_folder(TASK_DATA[OFFLINE[t]], tasks_dir) is not None
            else t for t in tasks]


def with_card_shots(manager: TaskManager, tasks: Sequence[str]) -> list[str | Task]:
    """The tasks to give `lm_eval.simple_evaluate`: the names, except upstream's card tasks,
    built here by `manager` (their Hub data loads now) with the card's shot count."""
    pinned = [t for t in tasks if t in CARD_SHOTS]
    if not pinned:
        return list(tasks)
    built = manager.load(pinned)["tasks"]
    for name in pinned:
        built[name].set_config(key="num_fewshot", value=CARD_SHOTS[name])
    return [built.get(t, t) for t in tasks]
