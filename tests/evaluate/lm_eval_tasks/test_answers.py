"""ttl.evaluate.lm_eval_tasks.answers: reading Sim/Não, an answer letter or a score out of generated text,
as the Portuguese harness's filters do."""

import pytest

from ttl.evaluate.lm_eval_tasks.answers import (
    INVALID,
    find_choice,
    levenshtein,
    parse_number,
    similar_label,
    similarity,
    strip_accents,
)

LABELS = ["Sim", "Não"]


def test_accents_and_edit_distance():
    assert strip_accents("Não, é uma questão") == "Nao, e uma questao"
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3
    assert similarity("sin", "sim") == pytest.approx(2 / 3)
    assert similarity("", "") == 1.0


@pytest.mark.parametrize("text, expected", [
    ("Sim", "Sim"),                        # exact
    (" NÃO", "Não"),                       # case and accents ignored
    ("nao", "Não"),
    ("Sim, a hipótese decorre.", "Sim"),   # the only label it contains
    ("sim ou não", "Sim"),                 # both contained: cut at nothing, first 3 chars "sim"
    ("Nã.", "Não"),                        # cut at ".", "na" vs "nao": similarity 2/3
    ("Talvez", INVALID),                   # "tal" is like neither label
    ("", INVALID),
])
def test_similar_label_matches_the_harness_filter(text, expected):
    assert similar_label(text, LABELS) == expected


@pytest.mark.parametrize("text, letters, expected", [
    ("B", "ABCDE", "B"),
    (" Letra C, pois ...", "ABCDE", "C"),
    ("A resposta correta é a alternativa D.", "ABCDE", "D"),   # the cue "alternativa", not the article "A"
    ("(E) porque", "ABCDE", "E"),
    ("\n\nOpção B", "ABCDE", "B"),                            # accent removed: "Opcao B"
    ("E", "ABCD", INVALID),                                    # OAB has no E
    ("Nenhuma delas", "ABCDE", INVALID),
])
def test_find_choice_reads_the_answer_letter(text, letters, expected):
    assert find_choice(text, letters) == expected


@pytest.mark.parametrize("text, expected", [
    ("4,5", 4.5),
    (" nota 3.2 de 5", 3.25),     # digits and points kept: "3.25" (the harness's rule)
    ("7", 5.0),                   # clipped to the range
    ("0,5", 1.0),
    ("1.234.5", 1.2345),          # only the first point between digits stays
    ("sem nota", 5.0),            # unreadable: the fallback
])
def test_parse_number_follows_the_harness_number_filter(text, expected):
    assert parse_number(text, 1.0, 5.0, fallback=5.0) == pytest.approx(expected)
