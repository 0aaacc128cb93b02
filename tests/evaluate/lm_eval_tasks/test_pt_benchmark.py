"""ttl.evaluate.lm_eval_tasks.pt_benchmark: the card's Portuguese tasks build the Portuguese harness's
prompts, few-shot pools and scores, from a local copy in either layout.

The reference below is the harness itself (eduagarcia/lm-evaluation-harness-pt, commit ca072156):
its Jinja templates and util.py functions, copied verbatim, and its context assembly
(`description + shot + " " + answer + "\\n\\n" + ... + doc`, api/task.py and api/samplers.py).
"""

import json
from pathlib import Path

import jinja2
import pytest

from ttl.evaluate.lm_eval_tasks import pt_benchmark as pt
from ttl.evaluate.lm_eval_tasks.catalog import SUITES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tasks"

# The harness's task files: description, doc_to_text, doc_to_target (verbatim).
REFERENCE = {
    "ttl_assin2_rte": (
        "Abaixo estão pares de premissa e hipótese. Para cada par, indique se a hipótese pode ser "
        "inferida a partir da premissa, responda apenas com \"Sim\" ou \"Não\".\n\n",
        "Premissa: {{premise}}\nHipótese: {{hypothesis}}\nPergunta: A hipótese pode ser inferida pela "
        "premissa? Sim ou Não?\nResposta:",
        "{{['Não', 'Sim'][entailment_judgment]}}"),
    "ttl_faquad_nli": (
        "Abaixo estão pares de pergunta e resposta. Para cada par, você deve julgar se a resposta "
        "responde à pergunta de maneira satisfatória e aparenta estar correta. Escreva apenas \"Sim\" "
        "ou \"Não\".\n\n",
        "Pergunta: {{question}}\nResposta: {{answer}}\nA resposta dada satisfaz à pergunta? Sim ou Não?",
        "{{['Não', 'Sim'][label]}}"),
    "ttl_hatebr_offensive": (
        "Abaixo contém o texto de comentários de usuários do Instagram em português, sua tarefa é "
        "classificar se o texto é ofensivo ou não. Responda apenas com \"Sim\" ou \"Não\".\n\n",
        "Texto: {{sentence}}\nPergunta: O texto é ofensivo?\nResposta:",
        "{{'Sim' if label == 1 else 'Não'}}"),
}


def reference_enem_doc_to_text(doc):
    """util.enem_doc_to_text, verbatim."""
    options = ""
    for text, label in zip(doc["choices"]["text"], doc["choices"]["label"], strict=True):
        options += f"{label}. {text}\n"
    return f"Pergunta:\n{doc['question']}\nAlternativas:\n{options.strip()}\nResposta correta:"


def reference_oab_doc_to_text(doc):
    """oab_exams util.doc_to_text, verbatim."""
    options = ""
    for text, label in zip(doc["choices"]["text"], doc["choices"]["label"], strict=True):
        options += f"{label}. {text}\n"
    return f"Questão:\n{doc['question']}\nAlternativas:\n{options.strip()}\nResposta correta:"


def reference_assin2_float_to_pt_str(doc):
    """util.assin2_float_to_pt_str, verbatim."""
    return "{:.1f}".format(doc['relatedness_score']).replace('.', ',')  # noqa: UP032


def reference_context(description, shots, doc_text):
    return description + "\n\n".join(q + " " + a for q, a in shots) + "\n\n" + doc_text


def render(template, doc):
    return jinja2.Template(template, keep_trailing_newline=True).render(**doc)


@pytest.fixture(scope="module")
def tasks():
    pytest.importorskip("lm_eval")
    from ttl.evaluate.harness import task_manager

    names = list(SUITES["card_pt"])
    return task_manager(names, str(FIXTURES)).load(names)["tasks"]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_yes_no_prompts_are_the_harness_templates(tasks, name):
    description, text, target = REFERENCE[name]
    task = tasks[name]
    doc = task.eval_docs[0]
    pool = list(task.dataset["fewshot"])
    k = task.config.num_fewshot
    expected = reference_context(description, [(render(text, d), render(target, d)) for d in pool[:k]],
                                 render(text, doc))
    assert task.fewshot_context(doc, k) == expected
    assert task.config.generation_kwargs["until"] == ["\n\n"]


def test_sts_prompt_and_target(tasks):
    task = tasks["ttl_assin2_sts"]
    doc = task.eval_docs[0]
    text = ("Frase 1: {{premise}}\nFrase 2: {{hypothesis}}\nPergunta: Quão similares são as duas frases? "
            "Dê uma pontuação entre 1,0 a 5,0.\nResposta:")
    shots = [(render(text, d), reference_assin2_float_to_pt_str(d))
             for d in list(task.dataset["fewshot"])[:15]]
    description = ("Abaixo estão pares de frases que você deve avaliar o grau de similaridade. Dê uma "
                   "pontuação entre 1,0 e 5,0, sendo 1,0 pouco similar e 5,0 muito similar.\n\n")
    assert task.fewshot_context(doc, 15) == reference_context(description, shots, render(text, doc))
    assert shots[0][1] == "4,2"  # fixture row 1: similarity 4.2


@pytest.mark.parametrize("name, reference, description_end", [
    ("ttl_enem_challenge", reference_enem_doc_to_text, "\"A\", \"B\", \"C\", \"D\" ou \"E\".\n\n"),
    ("ttl_bluex", reference_enem_doc_to_text, "\"A\", \"B\", \"C\", \"D\" ou \"E\".\n\n"),
    ("ttl_oab_exams", reference_oab_doc_to_text, "\"A\", \"B\", \"C\" ou \"D\".\n\n"),
])
def test_exam_prompts_and_few_shot_questions(tasks, name, reference, description_end):
    task = tasks[name]
    pool = list(task.dataset["fewshot"])
    ids = {"ttl_enem_challenge": pt.ENEM_SHOT_IDS, "ttl_bluex": pt.BLUEX_SHOT_IDS,
           "ttl_oab_exams": pt.OAB_SHOT_IDS}[name]
    assert [d["id"] for d in pool] == [i for i in ids if i in {d["id"] for d in pool}][:len(pool)]
    assert [d["id"] for d in pool[:3]] == ids[:3]
    # The few-shot questions leave the evaluated set (the harness's exclude_from_task).
    assert not {d["id"] for d in task.eval_docs} & set(ids)
    doc = task.eval_docs[0]
    context = task.fewshot_context(doc, 3)
    assert context.endswith(reference(doc))
    shots = "".join(reference(d) + " " + d["answerKey"] + "\n\n" for d in pool[:3])
    assert context == task.config.description + shots + reference(doc)
    assert task.config.description.endswith(description_end)


def test_the_local_exams_evaluate_every_split_but_the_shots(tasks):
    # enem/: 5 train questions (3 of them the shots) + 3 test questions -> 5 evaluated.
    assert len(tasks["ttl_enem_challenge"].eval_docs) == 5
    assert tasks["ttl_enem_challenge"].eval_docs[0]["id"] == "2022_50"  # ENEM_ prefix dropped
    assert len(tasks["ttl_oab_exams"].eval_docs) == 1 + 3


def test_assin2_pool_is_the_harness_id_list_in_order(tasks):
    pool = [d["sentence_pair_id"] for d in tasks["ttl_assin2_rte"].dataset["fewshot"]]
    assert pool == pt.ASSIN2_SHOT_IDS[:15]
    labels = [d["entailment_judgment"] for d in tasks["ttl_assin2_rte"].dataset["fewshot"]]
    assert labels[:4] == [1, 0, 1, 0]  # ids 1, 3251, 2, 3252: balanced as the harness picked them


def test_local_copy_in_either_layout_gives_the_same_documents(tmp_path):
    # The Hub layout (nilc-nlp/assin2, eduagarcia/portuguese_benchmark) in a tasks_dir: same docs.
    for folder, convert in (("assin2", pt.assin2_row), ("hatebr", pt.hatebr_row)):
        (tmp_path / folder).mkdir()
        for split in ("train", "test"):
            lines = (FIXTURES / folder / f"{split}.jsonl").read_text().splitlines()
            rows = [json.loads(line) for line in lines]
            (tmp_path / folder / f"{split}.jsonl").write_text(
                "".join(json.dumps(convert(r), ensure_ascii=False) + "\n" for r in rows))
    ours, hubs = pt.load_assin2(str(FIXTURES)), pt.load_assin2(str(tmp_path))
    assert ours["test"].to_list() == hubs["test"].to_list()
    assert ours["fewshot"].to_list() == hubs["fewshot"].to_list()
    # HateBR rows in the Hub layout carry the benchmark's idx: the harness's id list applies.
    # The fixture's ids 0-25 hold 7 of the 50 (0, 4, 8, 12, 16, 20, 24): too few for 25 shots.
    with pytest.raises(ValueError, match="only 7 of the harness's few-shot examples"):
        pt.load_hatebr(str(tmp_path))


def test_hatebr_local_pool_is_balanced_and_fixed():
    pool = pt.load_hatebr(str(FIXTURES))["fewshot"].to_list()
    assert len(pool) == 26 and sum(d["label"] for d in pool) == 13
    assert pool == pt.load_hatebr(str(FIXTURES))["fewshot"].to_list()  # seeded
    idx = [d["idx"] for d in pool]
    assert sorted(idx) == list(range(26)) and idx != sorted(idx)  # every row, shuffled


def test_scoring_reads_the_generated_answer():
    rte = {"entailment_judgment": 1}
    assert pt.rte_results(rte, [" Sim\n"]) == {"f1_macro": ("Sim", "Sim"), "acc": 1.0}
    assert pt.rte_results(rte, [" não"]) == {"f1_macro": ("Sim", "Não"), "acc": 0.0}
    assert pt.label_results({"label": 0}, ["xyz"]) == {"f1_macro": ("Não", "[invalid]"), "acc": 0.0}
    sts = pt.sts_results({"relatedness_score": 4.25}, [" 3,5 pontos"])
    assert sts == {"pearson": (4.2, 3.5), "mse": (4.2, 3.5)}  # gold as the target string: 4,2
    exam = {"answerKey": "C", "choices": {"text": ["a", "b", "c", "d"], "label": list("ABCD")}}
    assert pt.enem_results(exam, [" Letra C"]) == {"acc": 1.0}
    assert pt.oab_results(exam, [" E"]) == {"acc": 0.0}
