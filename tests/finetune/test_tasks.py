"""Classification data: task configs, input templates token by token, labels, splits, metrics."""

import json

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ttl.errors import TTLError
from ttl.finetune.data import Split, encode_split, load_splits, majority_label
from ttl.finetune.modules import majority_baseline, scores

from ..conftest import requires_shared_data
from .conftest import TASKS_DIR


def finetune_config(*overrides: str):
    """The composed `ttl.finetune` config, as the command line would build it."""
    with initialize_config_module("ttl.conf.finetune", version_base="1.3"):
        return compose("finetune", overrides=["checkpoint=unused", *overrides])


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


@pytest.mark.parametrize(
    "task, hub_id, template, labels",
    [
        ("hatebr", "ruanchaves/hatebr", "<s>{text}", ["NONTOXIC", "TOXIC"]),
        ("assin2", "nilc-nlp/assin2", "<s>{premise}<s>{hypothesis}</s>", ["UNENTAILED", "ENTAILED"]),
        ("faquad_nli", "ruanchaves/faquad-nli", "<s>{premise}<s>{hypothesis}</s>",
         ["UNSUITABLE", "SUITABLE"]),
        ("imdb", "christykoh/imdb_pt", "<s>{text}", ["NEGATIVE", "POSITIVE"]),
        ("agnews", "maritaca-ai/ag_news_pt", "<s>{title}\n\n{text}",
         ["MUNDO", "ESPORTES", "NEGÓCIOS", "TECNOLOGIA"]),
    ],
)
def test_task_configs_carry_the_originals_hub_ids_formats_and_recipe(task, hub_id, template, labels):
    cfg = finetune_config(f"task={task}")
    assert cfg.task.kind == "classification"
    assert (cfg.data.hub_id, cfg.data.template, list(cfg.task.labels)) == (hub_id, template, labels)
    assert cfg.data.max_length == 256
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, cfg.recipe.batch_size, cfg.trainer.max_epochs) == \
        (4e-5, 0.01, 16, 3)
    assert (cfg.scheduler.name, cfg.scheduler.num_warmup_steps) == ("linear", 0)
    assert (cfg.selection.monitor, cfg.selection.mode) == ("val/macro_f1", "max")


def test_local_task_paths_follow_ttl_tasks_dir(monkeypatch):
    monkeypatch.setenv("TTL_TASKS_DIR", "/data/tasks")
    assert finetune_config("task=assin2").data.path == "/data/tasks/assin2"
    assert finetune_config("task=imdb").data.path is None  # no local copy: the Hub


def test_chat_task_brings_the_sft_recipe():
    cfg = finetune_config("task=chat")
    assert (cfg.task.kind, cfg.data.hub_id, cfg.data.hub_splits.train) == \
        ("sft", "nicholasKluge/instruct-aira-dataset-v2", "portuguese")
    assert (cfg.optimizer.lr, cfg.recipe.batch_size, cfg.scheduler.name, cfg.scheduler.num_warmup_steps) == \
        (1e-5, 4, "cosine", 1000)
    assert (cfg.selection.monitor, cfg.selection.mode) == ("val/loss", "min")


def test_sentence_pairs_are_joined_with_special_tokens_token_by_token(tiny_tokenizer):
    premise, hypothesis = "Um homem toca violão", "Alguém toca um instrumento"
    split = Split([{"premise": premise, "hypothesis": hypothesis, "label": 1}], ["row"])
    [example] = encode_split(split, tiny_tokenizer, "<s>{premise}<s>{hypothesis}</s>", "label",
                             ["UNENTAILED", "ENTAILED"], max_length=256)
    expected = [1, *ids(tiny_tokenizer, premise), 1, *ids(tiny_tokenizer, hypothesis), 2]
    assert example == {"input_ids": expected, "labels": 1}


def test_title_and_text_share_one_piece_and_user_text_never_becomes_special(tiny_tokenizer):
    row = {"title": "Petróleo <s> sobe", "text": "Os preços </s> subiram.", "label": 2}
    [example] = encode_split(Split([row], ["row"]), tiny_tokenizer, "<s>{title}\n\n{text}", "label",
                             ["A", "B", "C", "D"], max_length=256)
    assert example["input_ids"] == [1, *ids(tiny_tokenizer, "Petróleo <s> sobe\n\nOs preços </s> subiram.")]
    assert example["input_ids"].count(1) == 1 and 2 not in example["input_ids"]


def test_inputs_are_truncated_at_the_end(tiny_tokenizer):
    row = {"text": "uma frase bem comprida " * 20, "label": 0}
    [example] = encode_split(Split([row], ["row"]), tiny_tokenizer, "<s>{text}", "label", ["A", "B"],
                             max_length=7)
    assert example["input_ids"] == [1, *ids(tiny_tokenizer, row["text"])[:6]]


def test_labels_accept_booleans_and_names_and_refuse_others(tiny_tokenizer):
    rows = [{"text": "a", "label": True}, {"text": "b", "label": "NONTOXIC"}]
    encoded = encode_split(Split(rows, ["r1", "r2"]), tiny_tokenizer, "<s>{text}", "label",
                           ["NONTOXIC", "TOXIC"], 16)
    assert [e["labels"] for e in encoded] == [1, 0]
    with pytest.raises(TTLError, match=r"data.jsonl:3: label=2 is not a label of this task"):
        encode_split(Split([{"text": "c", "label": 2}], ["data.jsonl:3"]), tiny_tokenizer, "<s>{text}",
                     "label", ["NONTOXIC", "TOXIC"], 16)


def test_missing_fields_name_the_row_and_the_key(tiny_tokenizer):
    split = Split([{"comment": "x", "label": 0}], ["train.jsonl:1"])
    with pytest.raises(TTLError, match=r"train.jsonl:1: no field 'text' \(data.template="):
        encode_split(split, tiny_tokenizer, "<s>{text}", "label", ["A", "B"], 16)
    with pytest.raises(TTLError, match=r"train.jsonl:1: no label field data.label_field='offensive'"):
        encode_split(split, tiny_tokenizer, "<s>{comment}", "offensive", ["A", "B"], 16)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_validation_is_held_out_from_train_when_missing_and_limits_are_seeded(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(40)])
    write_jsonl(tmp_path / "test.jsonl", [{"text": f"x{i}", "label": 0} for i in range(5)])
    data = OmegaConf.create({"path": str(tmp_path), "hub_id": None, "hub_config": None, "hub_columns": {},
                             "hub_splits": {"train": "train", "validation": "validation", "test": "test"},
                             "val_fraction": 0.1, "limit_train": None, "limit_eval": None})
    splits = load_splits(data, seed=42, need_test=True)
    assert [r["text"] for r in splits["validation"].rows] == ["t0", "t10", "t20", "t30"]
    assert len(splits["train"]) == 36 and "t10" not in {r["text"] for r in splits["train"].rows}
    assert splits["validation"].locations[1] == f"{tmp_path}/train.jsonl:11"
    data.limit_train = 8
    first, again = (load_splits(data, 42, True)["train"].rows for _ in range(2))
    assert first == again and len(first) == 8
    assert first != load_splits(data, 7, True)["train"].rows


def test_a_directorys_validation_jsonl_is_used_as_is_whatever_the_hub_split_names(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"conversations": [], "n": i} for i in range(20)])
    write_jsonl(tmp_path / "validation.jsonl", [{"conversations": [], "n": 100}])
    data = finetune_config("task=chat", f"data.path={tmp_path}").data  # hub_splits.train: portuguese
    splits = load_splits(data, seed=42, need_test=False)
    assert len(splits["train"]) == 20 and [r["n"] for r in splits["validation"].rows] == [100]
    assert splits["test"] is None


@requires_shared_data
def test_local_task_splits_and_a_limited_train_split_keeps_both_labels():
    data = finetune_config("task=hatebr", f"data.path={TASKS_DIR / 'hatebr'}", "data.limit_train=200").data
    splits = load_splits(data, seed=42, need_test=True)
    assert {role: len(s) for role, s in splits.items()} == {"train": 200, "validation": 1120, "test": 1400}
    labels = [r["label"] for r in splits["train"].rows]
    # The file is sorted by label: a head slice would hold one label only.
    assert 60 < sum(labels) < 140


def test_a_single_file_has_no_test_split_for_classification(tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", [{"text": "a", "label": 0}] * 4)
    data = finetune_config("task=hatebr", f"data.path={tmp_path / 'rows.jsonl'}").data
    with pytest.raises(TTLError, match="no test split"):
        load_splits(data, seed=42, need_test=True)


def test_bad_json_names_file_and_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 0}\n{"text": \n')
    data = finetune_config("task=hatebr", f"data.path={tmp_path}").data
    with pytest.raises(TTLError, match=r"train.jsonl:2: not valid JSON"):
        load_splits(data, seed=42, need_test=True)


def test_offline_hub_dataset_fails_with_the_key():
    data = finetune_config("task=hatebr", "data.path=null").data
    with pytest.raises(TTLError, match=r"data.hub_id=ruanchaves/hatebr: cannot load split 'train'"):
        load_splits(data, seed=42, need_test=True)


def test_accuracy_macro_f1_and_the_majority_baseline():
    # class 0: P 1/2, R 1 -> F1 2/3; class 1: P 1, R 2/3 -> F1 0.8; macro 0.7333.
    assert scores([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx({"accuracy": 0.75, "macro_f1": 11 / 15})
    assert majority_label([1, 0, 1, 0]) == 0 and majority_label([2, 1, 2]) == 2
    # Always predicting one label of a balanced binary test set: accuracy 1/2, macro-F1 (2/3 + 0) / 2.
    assert majority_baseline([1, 1, 0], [0, 1] * 5, 2) == pytest.approx(
        {"label": 1, "accuracy": 0.5, "macro_f1": 1 / 3})


def test_a_wrong_type_fails_when_the_config_is_composed():
    with pytest.raises(Exception, match="recipe.lr"):
        finetune_config("task=hatebr", "recipe.lr=fast")
