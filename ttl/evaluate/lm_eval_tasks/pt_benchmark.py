"""TeenyTinyLlama's Portuguese benchmark table as ttl-owned lm-eval tasks (the ttl_*.yaml files):
ASSIN2 RTE/STS, BLUEX, ENEM, FAQuAD-NLI, HateBR and OAB Exams.

Prompts, few-shot examples, answer extraction and metrics reproduce the harness the card cites,
eduagarcia/lm-evaluation-harness-pt (commit ca072156; lm_eval/tasks/portuguese/*.yaml and util.py,
lm_eval/tasks/oab_exams/default/): the model generates greedily and its answer is read from the
text. Each loader returns the test split and a `fewshot` split, the harness's few-shot pool in its
order (lm-eval's `first_n` sampler takes the first k). Rows in the layout of ttl's task folder are
converted to the Hub dataset's first, so both share everything after loading.
"""

from __future__ import annotations

import random
from functools import partial

import datasets

from ttl.evaluate.lm_eval_tasks.answers import find_choice, parse_number, similar_label
from ttl.evaluate.lm_eval_tasks.catalog import TASK_DATA
from ttl.evaluate.lm_eval_tasks.loaders import load_all_rows, load_splits, to_datasets

YES_NO = ("Não", "Sim")  # index = label
LABELS = ["Sim", "Não"]  # the order the harness's find_similar_label filter is given

# Few-shot pools, verbatim from the harness's task files.
# assin2_rte.yaml / assin2_sts.yaml: 50 balanced examples of the train split, by sentence_pair_id.
ASSIN2_SHOT_IDS = [1, 3251, 2, 3252, 3, 4, 5, 6, 3253, 7, 3254, 3255, 3256, 8, 9, 10, 3257, 11, 3258, 12, 13,
                   14, 15, 3259, 3260, 3261, 3262, 3263, 16, 17, 3264, 18, 3265, 3266, 3267, 19, 20, 3268,
                   3269, 21, 3270, 3271, 22, 3272, 3273, 23, 3274, 24, 25, 3275]
# faquad_nli.yaml: 50 positions in the train split.
FAQUAD_SHOT_INDICES = [1893, 949, 663, 105, 1169, 2910, 2227, 2813, 974, 558, 1503, 1958, 2918, 601, 1560,
                       984, 2388, 995, 2233, 1982, 165, 2788, 1312, 2285, 522, 1113, 1670, 323, 236, 1263,
                       1562, 2519, 1049, 432, 1167, 1394, 2022, 2551, 2194, 2187, 2282, 2816, 108, 301, 1185,
                       1315, 1420, 2436, 2322, 766]
# hatebr_offensive.yaml: 50 balanced examples of the train split, by idx.
HATEBR_SHOT_IDX = [48, 44, 36, 20, 3511, 88, 3555, 16, 56, 3535, 60, 40, 3527, 4, 76, 3579, 3523, 3551, 68,
                   3503, 84, 3539, 64, 3599, 80, 3563, 3559, 3543, 3547, 3587, 3595, 3575, 3567, 3591, 24,
                   96, 92, 3507, 52, 72, 8, 3571, 3515, 3519, 3531, 28, 32, 0, 12, 3583]
# enem.yaml (from piresramon/gpt-4-enem), bluex.yaml, oab_exams.yaml: ids, removed from the test.
ENEM_SHOT_IDS = ["2022_21", "2022_88", "2022_143"]
BLUEX_SHOT_IDS = ["USP_2018_3", "UNICAMP_2018_2", "USP_2018_35", "UNICAMP_2018_16", "USP_2018_89"]
OAB_SHOT_IDS = ["2010-01_1", "2010-01_11", "2010-01_13", "2010-01_23", "2010-01_26", "2010-01_28",
                "2010-01_38", "2010-01_48", "2010-01_58", "2010-01_68", "2010-01_76", "2010-01_83",
                "2010-01_85", "2010-01_91", "2010-01_99"]


def assin2_row(row: dict) -> dict:
    """An ASSIN2 pair in the Hub layout (nilc-nlp/assin2)."""
    if "entailment_judgment" in row:
        return row
    return {"sentence_pair_id": int(row["id"]), "premise": row["premise"], "hypothesis": row["hypothesis"],
            "relatedness_score": float(row["similarity"]), "entailment_judgment": int(row["label"])}


def faquad_row(row: dict) -> dict:
    """A FAQuAD-NLI pair in the Hub layout (ruanchaves/faquad-nli)."""
    if "question" in row:
        return row
    return {"document_index": row.get("document_index"), "document_title": row.get("document_title"),
            "paragraph_index": row.get("paragraph_index"), "question": row["premise"],
            "answer": row["hypothesis"], "label": int(row["label"])}


def hatebr_row(row: dict) -> dict:
    """A HateBR comment in the Hub layout (eduagarcia/portuguese_benchmark, HateBR_offensive_binary)."""
    if "sentence" in row:
        return row
    return {"idx": int(row["id"]), "sentence": row["text"], "label": int(row["label"])}


def exam_row(row: dict, prefix: str) -> dict:
    """An exam question in the Hub layout (eduagarcia/enem_challenge, eduagarcia/oab_exams):
    ttl's `ENEM_2022_21` / `OAB_2010-01_1` ids lose their prefix, as the Hub ids have none."""
    if "answerKey" in row:
        return row
    options = [str(o) for o in row["options"]]
    return {"id": str(row["id"]).removeprefix(prefix), "exam_id": str(row.get("exam", "")),
            "question": row["question"], "choices": {"text": options, "label": list("ABCDE"[: len(options)])},
            "answerKey": row["label"]}


def pool_by_key(rows: list[dict], key: str, wanted: list, needed: int, task: str) -> list[dict]:
    """The rows whose `key` is in `wanted`, in `wanted`'s order; at least `needed` of them."""
    index = {row[key]: row for row in rows}
    pool = [index[value] for value in wanted if value in index]
    if len(pool) < needed:
        raise ValueError(f"{task}: only {len(pool)} of the harness's few-shot examples ({key} in "
                         f"{wanted[:3]}...) are in its data; {needed} are needed")
    return pool


def load_assin2(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """ASSIN2 test pairs; few-shot pool: the harness's 50 train ids."""
    splits = load_splits(TASK_DATA["ttl_assin2_rte"], tasks_dir, ("train", "test"))
    train = [assin2_row(r) for r in splits["train"]]
    pool = pool_by_key(train, "sentence_pair_id", ASSIN2_SHOT_IDS, 15, "assin2")
    return to_datasets({"fewshot": pool, "test": [assin2_row(r) for r in splits["test"]]})


def load_faquad_nli(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """FAQuAD-NLI test pairs; few-shot pool: the harness's 50 train positions. A local copy
    whose rows differ from the Hub's gets other examples at those positions; one shorter than
    2,919 rows skips the positions past its end and tops the pool up with its first rows."""
    splits = load_splits(TASK_DATA["ttl_faquad_nli"], tasks_dir, ("train", "test"))
    train = [faquad_row(r) for r in splits["train"]]
    positions = [i for i in FAQUAD_SHOT_INDICES if i < len(train)]
    positions += [i for i in range(len(train)) if i not in positions][: max(0, 15 - len(positions))]
    if len(positions) < 15:
        raise ValueError(f"faquad_nli: the train split has {len(train)} rows; 15 few-shot examples "
                         "are needed")
    return to_datasets({"fewshot": [train[i] for i in positions],
                        "test": [faquad_row(r) for r in splits["test"]]})


def load_hatebr(tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """HateBR test comments; few-shot pool: the harness's 50 train idx values on the Hub
    layout. ttl's folder layout numbers rows by HateBR.csv, not by the benchmark's idx, so
    there the pool is the same kind of sample: 25 comments of each class (the lowest ids),
    shuffled with seed 1234."""
    splits = load_splits(TASK_DATA["ttl_hatebr_offensive"], tasks_dir, ("train", "test"))
    benchmark_ids = all("idx" in r for r in splits["train"])
    train = [hatebr_row(r) for r in splits["train"]]
    if benchmark_ids:
        pool = pool_by_key(train, "idx", HATEBR_SHOT_IDX, 25, "hatebr")
    else:
        pool = balanced_pool(train, per_class=25, seed=1234)
        if len(pool) < 25:
            raise ValueError(f"hatebr: the train split has {len(train)} rows; 25 few-shot examples "
                             "are needed")
    return to_datasets({"fewshot": pool, "test": [hatebr_row(r) for r in splits["test"]]})


def balanced_pool(rows: list[dict], per_class: int, seed: int) -> list[dict]:
    """The `per_class` lowest-idx rows of each label, shuffled with `seed`."""
    pool = []
    for label in sorted({r["label"] for r in rows}):
        pool += sorted((r for r in rows if r["label"] == label), key=lambda r: r["idx"])[:per_class]
    random.Random(seed).shuffle(pool)
    return pool


def load_exam(task: str, prefix: str, shot_ids: list[str], tasks_dir: str | None = None,
              **metadata) -> datasets.DatasetDict:
    """The exam's questions (every split of the data: the harness evaluates on the whole
    dataset) minus its few-shot questions, which make the pool."""
    rows = [exam_row(r, prefix) for r in load_all_rows(TASK_DATA[task], tasks_dir, "train")]
    rows = [r for r in rows if len(r["choices"]["text"]) >= 2]  # questions whose options were lost
    pool = pool_by_key(rows, "id", shot_ids, 3, task)
    return to_datasets({"fewshot": pool, "test": [r for r in rows if r["id"] not in set(shot_ids)]})


# ENEM minus the 3 few-shot questions of ENEM 2022; BLUEX (text only) minus 5; OAB minus the 15
# of exam 2010-01.
load_enem = partial(load_exam, "ttl_enem_challenge", "ENEM_", ENEM_SHOT_IDS)
load_bluex = partial(load_exam, "ttl_bluex", "", BLUEX_SHOT_IDS)
load_oab = partial(load_exam, "ttl_oab_exams", "OAB_", OAB_SHOT_IDS)


def rte_target(doc: dict) -> str:
    """Sim (entailment) or Não."""
    return YES_NO[int(doc["entailment_judgment"])]


def sts_target(doc: dict) -> str:
    """The similarity with one decimal and a decimal comma ("4,3"), as util.assin2_float_to_pt_str."""
    return f"{float(doc['relatedness_score']):.1f}".replace(".", ",")


def label_target(doc: dict) -> str:
    """Sim (FAQuAD-NLI: the sentence answers the question; HateBR: offensive) or Não."""
    return YES_NO[int(doc["label"])]


def _options(doc: dict) -> str:
    choices = doc["choices"]
    pairs = zip(choices["text"], choices["label"], strict=True)
    return "".join(f"{label}. {text}\n" for text, label in pairs).strip()


def enem_text(doc: dict) -> str:
    """util.enem_doc_to_text (ENEM and BLUEX)."""
    return f"Pergunta:\n{doc['question']}\nAlternativas:\n{_options(doc)}\nResposta correta:"


def oab_text(doc: dict) -> str:
    """oab_exams util.doc_to_text."""
    return f"Questão:\n{doc['question']}\nAlternativas:\n{_options(doc)}\nResposta correta:"


def _yes_no_results(gold: str, results: list[str]) -> dict:
    prediction = similar_label(results[0], LABELS)
    return {"f1_macro": (gold, prediction), "acc": float(prediction == gold)}


def rte_results(doc: dict, results: list[str]) -> dict:
    """Macro-F1 pair and accuracy of the generated Sim/Não."""
    return _yes_no_results(rte_target(doc), results)


def label_results(doc: dict, results: list[str]) -> dict:
    """Macro-F1 pair and accuracy of the generated Sim/Não (FAQuAD-NLI, HateBR)."""
    return _yes_no_results(label_target(doc), results)


def sts_results(doc: dict, results: list[str]) -> dict:
    """(gold, predicted) similarity for Pearson and MSE; an unreadable answer counts as 5.0,
    values outside 1-5 are clipped (the harness's number_filter settings)."""
    gold = float(sts_target(doc).replace(",", "."))
    prediction = parse_number(results[0], 1.0, 5.0, fallback=5.0)
    return {"pearson": (gold, prediction), "mse": (gold, prediction)}


def enem_results(doc: dict, results: list[str]) -> dict:
    """Accuracy of the answer letter (A-E) read from the generated text."""
    return {"acc": float(find_choice(results[0], "ABCDE") == doc["answerKey"])}


def oab_results(doc: dict, results: list[str]) -> dict:
    """Accuracy of the answer letter (A-D) read from the generated text."""
    return {"acc": float(find_choice(results[0], "ABCD") == doc["answerKey"])}
