"""Instruction tuning data: chat template round trip, prompt and padding masking token by token, packing."""

import json

import pytest
import torch
from transformers import AutoTokenizer

from ttl.errors import TTLError
from ttl.finetune.chat import (
    IGNORE_INDEX,
    chat_collator,
    encode_conversation,
    encode_conversations,
    prepare_chat_tokenizer,
)
from ttl.finetune.config import ChatSettings
from ttl.finetune.data import read_jsonl
from ttl.model import build_model, llama_config
from ttl.train.config import model_preset

from .conftest import CONVERSATIONS

CHAT = ChatSettings()
TWO_TURNS = [
    {"role": "user", "content": "Qual é a capital do Brasil?"},
    {"role": "assistant", "content": "A capital é Brasília."},
    {"role": "user", "content": " E a de Portugal? "},
    {"role": "assistant", "content": "Lisboa."},
]


@pytest.fixture
def chat_tokenizer(tiny_tokenizer_copy):
    tokenizer = tiny_tokenizer_copy()
    assert prepare_chat_tokenizer(tokenizer, list(CHAT.added_tokens), CHAT.template) == 2
    return tokenizer


def test_template_renders_the_teenytinyllama_chat_format(chat_tokenizer):
    text = chat_tokenizer.apply_chat_template(TWO_TURNS, tokenize=False)
    assert text == ("<s><instruction>Qual é a capital do Brasil?</instruction>A capital é Brasília.</s>"
                    "<instruction>E a de Portugal?</instruction>Lisboa.</s>")
    prompt = chat_tokenizer.apply_chat_template(TWO_TURNS[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<s><instruction>Qual é a capital do Brasil?</instruction>"


def test_instruction_tokens_are_single_new_ids_and_adding_twice_adds_nothing(chat_tokenizer):
    assert len(chat_tokenizer) == 2050
    assert chat_tokenizer.convert_tokens_to_ids(["<instruction>", "</instruction>"]) == [2048, 2049]
    assert chat_tokenizer("<instruction>", add_special_tokens=False)["input_ids"] == [2048]
    assert prepare_chat_tokenizer(chat_tokenizer, list(CHAT.added_tokens), CHAT.template) == 0


def test_prompt_is_masked_and_answers_are_learned_token_by_token(chat_tokenizer):
    example = encode_conversation(chat_tokenizer, TWO_TURNS, max_length=512)
    ids, labels = example["input_ids"], example["labels"]
    begin, end = chat_tokenizer.convert_tokens_to_ids(["<instruction>", "</instruction>"])
    # Walk the ids: from <s> through each </instruction> is prompt; after it, the answer up to </s>.
    in_prompt, expected = True, []
    for token in ids:
        if token == begin:
            in_prompt = True
        expected.append(IGNORE_INDEX if in_prompt else token)
        if token == end:
            in_prompt = False
    assert labels == expected
    assert ids[0] == 1 and ids.count(begin) == 2 and ids.count(2) == 2
    answers = [t for t in labels if t != IGNORE_INDEX]
    assert chat_tokenizer.decode(answers) == "A capital é Brasília.</s>Lisboa.</s>"
    masked = [t for t, label in zip(ids, labels, strict=True) if label == IGNORE_INDEX]
    assert chat_tokenizer.decode(masked) == \
        "<s><instruction>Qual é a capital do Brasil?</instruction><instruction>E a de Portugal?</instruction>"


def test_padding_carries_no_loss_and_no_attention(chat_tokenizer):
    short = encode_conversation(chat_tokenizer, TWO_TURNS[:2], 512)
    long = encode_conversation(chat_tokenizer, TWO_TURNS, 512)
    batch = chat_collator(chat_tokenizer, packing=False)([short, long])
    n = len(short["input_ids"])
    assert batch["input_ids"].shape == (2, len(long["input_ids"]))
    assert batch["input_ids"][0, :n].tolist() == short["input_ids"]
    assert batch["labels"][0, :n].tolist() == short["labels"]
    assert set(batch["input_ids"][0, n:].tolist()) == {chat_tokenizer.pad_token_id}
    assert set(batch["labels"][0, n:].tolist()) == {IGNORE_INDEX}
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(long["input_ids"]) - n)
    assert batch["labels"][1].tolist() == long["labels"]


def test_packing_gives_the_padded_batchs_loss_with_no_padding(chat_tokenizer):
    torch.manual_seed(0)
    model_cfg = model_preset("tiny")
    model = build_model(llama_config(model_cfg))
    model.resize_token_embeddings(len(chat_tokenizer))
    model.eval()
    examples = [encode_conversation(chat_tokenizer, TWO_TURNS[:2], 512),
                encode_conversation(chat_tokenizer, TWO_TURNS, 512)]
    padded = chat_collator(chat_tokenizer, packing=False)(examples)
    packed = chat_collator(chat_tokenizer, packing=True)(examples)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))
    assert chat_tokenizer.pad_token_id not in packed["input_ids"].tolist()[0]
    assert packed["position_ids"][0, len(examples[0]["input_ids"])] == 0  # restarts per conversation
    with torch.no_grad():
        assert model(**packed).loss == pytest.approx(float(model(**padded).loss), abs=1e-5)


def test_chat_template_round_trips_through_the_saved_tokenizer(chat_tokenizer, tmp_path):
    chat_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.chat_template == CHAT.template and len(loaded) == 2050
    assert loaded.apply_chat_template(TWO_TURNS, tokenize=False) == \
        chat_tokenizer.apply_chat_template(TWO_TURNS, tokenize=False)
    reloaded_ids = loaded.apply_chat_template(TWO_TURNS, tokenize=True, return_dict=True)["input_ids"]
    assert list(reloaded_ids) == encode_conversation(chat_tokenizer, TWO_TURNS, 512)["input_ids"]


def test_conversations_file_encodes_and_truncation_drops_answerless_rows(chat_tokenizer):
    split = read_jsonl(CONVERSATIONS)
    examples, stats = encode_conversations(split, chat_tokenizer, "conversations", max_length=512)
    assert stats.conversations == len(split) == 16 and stats.dropped == 0
    assert stats.supervised_tokens == sum(sum(x != IGNORE_INDEX for x in e["labels"]) for e in examples)
    _, short = encode_conversations(split, chat_tokenizer, "conversations", max_length=6)
    assert short.conversations == 0 and short.dropped == 16


@pytest.mark.parametrize(
    "row, message",
    [
        ({"conversations": [{"role": "assistant", "content": "Oi"}]}, "turn 1 is assistant"),
        ({"conversations": [{"role": "system", "content": "x"}]}, "turn 1 is system"),
        ({"conversations": []}, "must be a non-empty list"),
        ({"conversations": [{"role": "user"}]}, "string 'role' and 'content'"),
        ({"messages": []}, "no field data.messages_field='conversations'"),
    ],
)
def test_malformed_conversations_name_file_and_line(chat_tokenizer, tmp_path, row, message):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"conversations": TWO_TURNS}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(TTLError, match=f"chat.jsonl:2: .*{message}"):
        encode_conversations(read_jsonl(path), chat_tokenizer, "conversations", 512)
