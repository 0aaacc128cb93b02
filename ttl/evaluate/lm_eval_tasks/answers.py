"""Reading an answer out of generated text, as the Portuguese harness's filters do.

Re-implemented from eduagarcia/lm-evaluation-harness-pt (commit ca072156), lm_eval/filters/
{custom,extraction,decontamination}.py. The fork uses `unidecode` and `textdistance`; here accents
are removed by Unicode decomposition (the same result on Portuguese letters) and the normalised
Levenshtein similarity is computed directly, so ttl needs neither package.
"""

from __future__ import annotations

import re
import unicodedata

INVALID = "[invalid]"
# Where the fork cuts a free-text answer before comparing it with the labels.
_CUT_AT = (".", ",", ";", ":", "(", ")", "[", "]", "\n")


def strip_accents(text: str) -> str:
    """`text` without diacritics ("Não" -> "Nao"); other characters unchanged."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def similarity(a: str, b: str) -> float:
    """1 - edit distance / length of the longer string (1.0 for two empty strings)."""
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else 1 - levenshtein(a, b) / longest


def similar_label(prediction: str, labels: list[str], fallback: str = INVALID) -> str:
    """The label a free-text answer means (the fork's `find_similar_label`): an exact match
    (case and accents ignored), else the only label it contains, else the most similar label
    to its first clause when that similarity is at least 0.5, else `fallback`."""
    normalized = [strip_accents(label.strip().lower()) for label in labels]
    text = strip_accents(prediction.strip().lower())
    if text in normalized:
        return labels[normalized.index(text)]
    if text == "":
        return fallback
    contained = [i for i, label in enumerate(normalized) if label in text]
    if len(contained) == 1:
        return labels[contained[0]]
    for mark in _CUT_AT:
        if mark in text:
            text = text[: text.find(mark)]
    text = text[: max(len(label) for label in normalized)]
    scores = [similarity(text, label) for label in normalized]
    best = max(scores)
    return fallback if best < 0.5 else labels[scores.index(best)]


def find_choice(text: str, letters: str = "ABCDE", fallback: str = INVALID) -> str:
    """The answer letter in generated text, after the fork's filter chain for the exams
    (normalize_spaces, remove_accents, find_choices): the text itself when it is a letter, else
    the first match of the first pattern that matches, else `fallback`."""
    text = strip_accents(re.sub("[ \n\r\t]+", " ", text)).strip()
    if text in letters and len(text) == 1:
        return text
    group = f"[{letters}]"
    cue = r"(?:[Ll]etra|[Aa]lternativa|[Rr]esposta|[Rr]esposta [Cc]orreta|[Rr]esposta [Cc]orreta e|[Oo]pcao)"
    # The fork's regular expressions (its enem.yaml, bluex.yaml, oab_exams.yaml), most specific first.
    patterns = (rf"{cue}:? ({group})\b", rf"\b({group})\.", rf"\b({group}) ?[.):-]", rf"\b({group})$",
                rf"\b({group})\b")
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group(1)
    return fallback


def parse_number(text: str, low: float, high: float, fallback: float) -> float:
    """A decimal number in generated text (the fork's `number_filter`, type float, clipped to
    [low, high]): a comma is a decimal point, everything but digits and points is dropped,
    and only the first point between two digits is kept."""
    digits = re.sub(r"[^0-9.]", "", text.replace(",", "."))
    if "." in digits:
        match = re.search(r"[0-9]\.[0-9]", digits)
        if match is not None:
            cut = match.span()[0] + 1
            digits = digits[:cut].replace(".", "") + "." + digits[cut + 1:].replace(".", "")
        else:
            digits = digits.replace(".", "")
    if digits == "":
        return fallback
    try:
        value = float(digits)
    except ValueError:
        return fallback
    return min(max(value, low), high)
