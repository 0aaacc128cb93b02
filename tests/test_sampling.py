"""ttl.sampling: the model card's settings, greedy decoding, prompts."""

import pytest

from ttl.errors import TTLError
from ttl.sampling import GENERATION_DEFAULTS, generation_settings, read_prompts


def test_the_model_cards_settings_and_greedy_decoding():
    assert generation_settings() == GENERATION_DEFAULTS
    greedy = generation_settings(do_sample=False)
    assert greedy == {"do_sample": False, "repetition_penalty": 1.2, "max_new_tokens": 150}
    with pytest.raises(TTLError, match="temperature=0: must be positive when sampling"):
        generation_settings(temperature=0)
    with pytest.raises(TTLError, match="max_new_tokens=0: must be at least 1"):
        generation_settings(max_new_tokens=0)


def test_prompts_come_from_the_argument_then_the_files_lines(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("primeiro\n\n  \nsegundo\n", encoding="utf-8")
    assert read_prompts("zero", str(path)) == ["zero", "primeiro", "segundo"]
    with pytest.raises(TTLError, match="prompts_file=.*nope.txt: no such file"):
        read_prompts(None, str(tmp_path / "nope.txt"))
    with pytest.raises(TTLError, match="no prompt: give prompt=... or prompts_file=..."):
        read_prompts(None, None)
