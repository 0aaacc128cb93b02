"""`python -m ttl.finetune` end to end: a classifier on a slice of HateBR, a chat model, bad inputs."""

import csv
import json
import re

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from ttl.finetune.data import encode_split, load_splits

from ..conftest import requires_shared_data
from .conftest import CONVERSATIONS, TASKS_DIR, finetune_cli
from .test_tasks import finetune_config


@pytest.fixture(scope="module")
def hatebr_run(tmp_path_factory, tiny_checkpoint):
    """HateBR on 200 training examples (full validation and test), lr raised for a tiny model."""
    cwd = tmp_path_factory.mktemp("hatebr")
    result = finetune_cli(["task=hatebr", f"checkpoint={tiny_checkpoint}", "logger=csv",
                           "data.limit_train=200", "recipe.lr=1e-3"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "finetune-hatebr", result


def predict(model, examples: list[dict], pad_id: int) -> list[int]:
    """Predictions of an exported classifier, batch by batch with right padding."""
    out = []
    with torch.no_grad():
        for i in range(0, len(examples), 64):
            chunk = [e["input_ids"] for e in examples[i:i + 64]]
            width = max(map(len, chunk))
            ids = torch.tensor([c + [pad_id] * (width - len(c)) for c in chunk])
            out += model(input_ids=ids, attention_mask=(ids != pad_id).long()).logits.argmax(-1).tolist()
    return out


@requires_shared_data
@pytest.mark.slow
def test_classifier_is_selected_on_validation_and_beats_the_majority_baseline(hatebr_run):
    run_dir, result = hatebr_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["examples"] == {"train": 200, "validation": 1120, "test": 1400}
    assert metrics["max_length"] == 128  # 256 capped at the tiny model's context
    history = metrics["validation"]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    best = max(h["val/macro_f1"] for h in history)
    first_best = next(h for h in history if h["val/macro_f1"] == best)
    assert metrics["selection"] == {"monitor": "val/macro_f1", "mode": "max", **first_best}
    # HateBR's test split is balanced: always answering one label scores 1/2 and 1/3.
    assert metrics["majority_baseline"]["accuracy"] == pytest.approx(0.5)
    assert metrics["majority_baseline"]["macro_f1"] == pytest.approx(1 / 3)
    assert metrics["test"]["accuracy"] > 0.55 and metrics["test"]["macro_f1"] > 0.55
    out = result.stdout
    assert f"test (1,400 examples): accuracy {metrics['test']['accuracy']:.4f}" in out
    assert "majority baseline (always " in out and "accuracy 0.5000  macro-F1 0.3333" in out
    # The logged validations are the ones the report selected from.
    with open(next(run_dir.glob("logs/version_*/metrics.csv"))) as handle:
        logged = [float(r["val/macro_f1"]) for r in csv.DictReader(handle) if r["val/macro_f1"]]
    assert logged == pytest.approx([h["val/macro_f1"] for h in history], abs=1e-5)
    assert not (run_dir / "checkpoints").exists()  # the selection .ckpt is dropped after export
    assert metrics["energy"]["kwh"] > 0 and (run_dir / "emissions.csv").is_file()


@requires_shared_data
@pytest.mark.slow
def test_exported_classifier_is_the_selected_epoch_and_reproduces_the_test_score(hatebr_run):
    run_dir, _ = hatebr_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model_dir = run_dir / "model"
    assert json.loads((model_dir / "metrics.json").read_text()) == metrics
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.id2label == {0: "NONTOXIC", 1: "TOXIC"} and model.config.pad_token_id == 3
    data = finetune_config("task=hatebr", f"data.path={TASKS_DIR / 'hatebr'}").data
    splits = load_splits(data, seed=42, need_test=True)
    for role, key in (("test", "accuracy"), ("validation", "val/acc")):
        examples = encode_split(splits[role], tokenizer, data.template, "label", ["NONTOXIC", "TOXIC"], 128)
        predictions = predict(model, examples, tokenizer.pad_token_id)
        accuracy = sum(p == e["labels"] for p, e in zip(predictions, examples, strict=True)) / len(examples)
        expected = metrics["test"][key] if role == "test" else metrics["selection"][key]
        assert accuracy == pytest.approx(expected, abs=1e-6), role
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
    assert classify("Que comentário horrível!")[0]["label"] in ("NONTOXIC", "TOXIC")


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory, tiny_checkpoint):
    """Instruction tuning on the test conversations, packed."""
    cwd = tmp_path_factory.mktemp("chat")
    result = finetune_cli(["task=chat", f"checkpoint={tiny_checkpoint}", "logger=csv",
                           f"data.path={CONVERSATIONS}", "data.packing=true", "recipe.warmup_steps=0",
                           "recipe.lr=1e-3"], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "finetune-chat", result


@pytest.mark.slow
def test_chat_model_exports_with_its_template_and_resized_vocabulary(chat_run):
    run_dir, result = chat_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["added_tokens"] == 2 and metrics["vocab_size"] == 2050 and metrics["packing"] is True
    assert metrics["conversations"]["train"]["conversations"] == 14  # 16 minus every 10th held out
    assert metrics["conversations"]["validation"]["conversations"] == 2
    losses = [h["val/loss"] for h in metrics["validation"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert metrics["selection"]["val/loss"] == min(losses)
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    assert model.get_input_embeddings().num_embeddings == 2050 == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == 2050
    assert tokenizer.chat_template.startswith("{{- bos_token -}}")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Qual é a capital do Brasil?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert prompt["input_ids"][0, -1] == tokenizer.convert_tokens_to_ids("</instruction>")
    output = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    assert "selected: epoch" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["task=nope", "checkpoint=x"], "task=nope: unknown task; choose one of agnews, assin2, chat"),
        (["task=hatebr", "checkpoint=x", "recipe.epochs=0"], "recipe.epochs=0: must be at least 1"),
    ],
)
def test_bad_inputs_end_with_one_line_and_exit_code_2(tmp_path, args, message):
    result = finetune_cli(args, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    # Hydra creates the (empty) run directory before the run starts; nothing is written into it.
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_task_argument_is_required_and_checked_before_hydra():
    from ttl.errors import TTLError
    from ttl.finetune.__main__ import check_task_argument, usage

    with pytest.raises(TTLError, match=r"task is required: python -m ttl.finetune task=<agnews\|assin2"):
        check_task_argument(["checkpoint=x"])
    with pytest.raises(TTLError, match="task=hatebr2: unknown task"):
        check_task_argument(["-m", "task=hatebr,hatebr2"])
    check_task_argument(["--help"])  # Hydra's own flags pass through
    assert "tasks: agnews, assin2, chat, faquad_nli, hatebr, imdb" in usage()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task=hatebr"], "checkpoint is required"),
        (["task=hatebr", "checkpoint=/no/such/dir"], "checkpoint=/no/such/dir: no such directory"),
        (["task=hatebr", "CKPT", "recipe.batch_size=0"], "recipe.batch_size=0: must be at least 1"),
        (["task=hatebr", "CKPT", "recipe.batch_size=6", "hardware.micro_batch_size=4"],
         "recipe.batch_size=6 does not divide into hardware.micro_batch_size=4 x 1 device(s)"),
        (["task=hatebr", "CKPT", "data.path=/no/such/data"],
         "data.path=/no/such/data: no such file or directory (or data.path=null for the Hub copy"),
        (["task=chat", "CKPT"], "data.hub_id=nicholasKluge/instruct-aira-dataset-v2: cannot load split"),
        (["task=hatebr", "checkpoint=nicholasKluge/TeenyTinyLlama-160m"],
         "checkpoint=nicholasKluge/TeenyTinyLlama-160m: cannot load it"),
        (["task=hatebr", "CKPT", "trainer.strategy=fsdp"],
         "trainer.strategy=fsdp shards pre-training (ttl.train) only"),
    ],
)
def test_config_and_input_errors_name_the_key(tmp_path, monkeypatch, tiny_checkpoint, overrides, message):
    from ttl.errors import TTLError
    from ttl.finetune.run import finetune as run

    monkeypatch.chdir(tmp_path)
    cfg = finetune_config(*[o.replace("CKPT", f"checkpoint={tiny_checkpoint}") for o in overrides])
    if "checkpoint is required" in message:
        cfg.checkpoint = "???"
    with pytest.raises(TTLError, match=re.escape(message)):
        run(cfg)
    assert not (tmp_path / "runs").exists()


def test_a_run_directory_instead_of_a_step_directory_is_explained(tiny_checkpoint):
    from ttl.checkpoints import resolve_checkpoint
    from ttl.errors import TTLError

    with pytest.raises(TTLError, match=f"no config.json in this directory; pass a step directory such as "
                                       f"checkpoint={tiny_checkpoint}"):
        resolve_checkpoint(str(tiny_checkpoint.parent))


@requires_shared_data
@pytest.mark.parametrize(
    "override, message",
    [
        ("data.label_field=offensive", "no label field data.label_field='offensive'"),
        ("data.template='<s>{comment}'", "no field 'comment'"),
    ],
)
def test_rows_without_the_configured_fields_name_file_line_and_key(tiny_checkpoint, override, message):
    from ttl.errors import TTLError
    from ttl.finetune.run import finetune as run

    cfg = finetune_config("task=hatebr", f"checkpoint={tiny_checkpoint}", f"data.path={TASKS_DIR / 'hatebr'}",
                          override)
    with pytest.raises(TTLError, match=re.escape(f"hatebr/train.jsonl:1: {message}")):
        run(cfg)
