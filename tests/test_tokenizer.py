"""ttl.tokenizer: special ids, byte fallback, Hugging Face round trip, CLI, fertility."""

import json

from transformers import AutoTokenizer

from ttl.tokenizer import BYTE_TOKENS, fertility, train_bpe

from .conftest import run_cli


def test_special_ids_and_vocabulary_size(tiny_tokenizer):
    assert len(tiny_tokenizer) == 2048
    ids = [tiny_tokenizer.convert_tokens_to_ids(t) for t in ("<unk>", "<s>", "</s>", "<pad>")]
    assert ids == [0, 1, 2, 3]
    assert tiny_tokenizer.convert_tokens_to_ids(BYTE_TOKENS[0]) == 4
    assert tiny_tokenizer.convert_tokens_to_ids(BYTE_TOKENS[-1]) == 259


def test_bos_is_added_and_text_round_trips_exactly(tiny_tokenizer):
    text = "Olá, ação! Emoji 😀, símbolo ﬁ e\ttab."
    ids = tiny_tokenizer(text)["input_ids"]
    assert ids[0] == 1 and 0 not in ids  # byte fallback: nothing becomes <unk>
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_literal_special_strings_are_not_bytes(tiny_tokenizer):
    ids = tiny_tokenizer("<0x41>", add_special_tokens=False)["input_ids"]
    assert tiny_tokenizer.decode(ids) == "<0x41>"


def test_saved_directory_loads_with_autotokenizer(tiny_tokenizer_dir, tiny_tokenizer):
    loaded = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    text = "A capivara é o maior roedor do mundo."
    assert loaded(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    config = json.loads((tiny_tokenizer_dir / "tokenizer_config.json").read_text())
    assert config["bos_token"] == "<s>" and config["pad_token"] == "<pad>"


def test_documents_longer_than_sentencepiece_limit_are_learned():
    long_doc = ("palavrarara " * 2000).strip()  # 24 KB on one line
    tokenizer = train_bpe(["texto curto", long_doc], vocab_size=300, min_frequency=1)
    assert "▁palavrarara" in tokenizer.get_vocab()


def test_fertility_counts_tokens_per_word(tiny_tokenizer):
    ratio, tokens, words = fertility(tiny_tokenizer, ["uma frase simples", ""])
    assert words == 3 and tokens >= 3 and ratio == tokens / 3


def test_cli_trains_saves_and_reports_fertility(tmp_path, sample_dir):
    out = tmp_path / "tok"
    result = run_cli(["-m", "ttl.tokenizer", f"data_path={sample_dir}", "vocab_size=1024",
                      f"output_dir={out}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "fertility on validation:" in result.stdout
    assert len(AutoTokenizer.from_pretrained(out)) == 1024


def test_cli_refuses_unknown_keys_and_bad_values(tmp_path):
    unknown = run_cli(["-m", "ttl.tokenizer", "vocab=10"], cwd=tmp_path)
    # Hydra's error for a key conf/tokenizer.yaml does not have (as for every command).
    assert unknown.returncode == 1 and "Could not override 'vocab'" in unknown.stderr
    bad = run_cli(["-m", "ttl.tokenizer", "data_path=x", "vocab_size=big"], cwd=tmp_path)
    # A value of the wrong type is refused by the schema when Hydra composes (exit 1).
    assert bad.returncode == 1 and "vocab_size=big" in bad.stderr
    assert "could not be converted to Integer" in bad.stderr
