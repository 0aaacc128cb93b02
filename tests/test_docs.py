"""Every command that the README and docs/ show, as a user copies it.

A command that a page shows is a claim that it works. Each one is checked as far as this
machine allows (no GPU, no Hub):

1. every `python -m ttl...` line composes as written: Hydra checks each key and its type, so a
   renamed key, a typo or a wrong value in the docs fails here (`--cfg all`; a multirun line
   composes its first job, with its launcher's settings);
2. every `python -m ttl.train` line also plans as written (`dry_run=true` added): the model is
   built and counted, the batch split for its trainer is computed, the data source resolved;
   a multirun line plans every job of the sweep through Hydra's own launcher (not SLURM's);
3. the lines that can run here in full, with the shipped sample corpus, run in slow tests:
   the quickstart (tests/train/test_pretrain.py) and the tokenizer, prepare and shard-training
   lines (below), which read the commands from these pages.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from .conftest import ROOT, run_cli

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The commands' console entry points: each `main(argv)` returns the exit status.
ENTRY_POINTS = {
    "ttl.train": "ttl.train.__main__",
    "ttl.finetune": "ttl.finetune.__main__",
    "ttl.evaluate": "ttl.evaluate.__main__",
    "ttl.card": "ttl.card.__main__",
    "ttl.generate": "ttl.generate",
    "ttl.publish": "ttl.publish",
    "ttl.tokenizer": "ttl.tokenizer",
    "ttl.data.prepare": "ttl.data.prepare",
}


def page_commands(pages: list[Path] = PAGES) -> list[tuple[str, str]]:
    """(page:line, command) for every `python -m ttl...` line of the pages' bash blocks; a
    leading `srun` and a trailing comment are dropped."""
    found = []
    for page in pages:
        in_block = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.strip().startswith("```"):
                in_block = line.strip() == "```bash" if not in_block else False
                continue
            text = line.strip().removeprefix("srun ")
            if in_block and text.startswith("python -m ttl"):
                text = re.sub(r"\s+#.*$", "", text)
                found.append((f"{page.relative_to(ROOT)}:{number}", text))
    return found


def page_lines(prefix: str) -> list[str]:
    """The commands of the pages that start with `prefix`."""
    return [command for _, command in page_commands() if command.startswith(prefix)]


def first_job(args: list[str]) -> list[str]:
    """A multirun's overrides for its first job: each sweep `k=a,b` becomes `k=a`."""
    if not {"-m", "--multirun"} & set(args):
        return args
    parsed = OverridesParser.create().parse_overrides([a for a in args if "=" in a])
    first = {}
    for override in parsed:
        if override.is_sweep_override():
            value = next(override.sweep_string_iterator())
            first[override.input_line] = f"{override.get_key_element()}={value}"
    return [first.get(a, a) for a in args if a not in ("-m", "--multirun")]


def entry(command: str):
    """(main, argv) of a page's command line."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command
    module = words[2]
    assert module in ENTRY_POINTS, f"{command}: not one of ttl's commands {sorted(ENTRY_POINTS)}"
    main = __import__(ENTRY_POINTS[module], fromlist=["main"]).main
    return main, words[3:]


COMMANDS = page_commands()
TRAIN_PLANS = [(where, c) for where, c in COMMANDS
               if c.startswith("python -m ttl.train") and "hydra/launcher=slurm" not in c]


def test_the_pages_show_every_command():
    shown = {shlex.split(c)[2] for _, c in COMMANDS}
    assert shown == set(ENTRY_POINTS), f"commands no page shows: {set(ENTRY_POINTS) - shown}"
    assert len(COMMANDS) >= 30


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_shown_command_composes_as_written(where, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main, args = entry(command)
    status = main([*first_job(args), "--cfg", "all"])
    captured = capsys.readouterr()
    assert status == 0, f"{where}: {command}\n{captured.err[-2000:]}"
    assert "hydra:" in captured.out  # the job's config and Hydra's were composed and printed


@pytest.mark.parametrize(("where", "command"), TRAIN_PLANS, ids=[w for w, _ in TRAIN_PLANS])
def test_a_shown_training_command_plans_as_written(where, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTL_RUNS_DIR", str(tmp_path / "runs"))
    main, args = entry(command)
    status = main([*args, "dry_run=true"])
    captured = capsys.readouterr()
    assert status == 0, f"{where}: {command}\n{captured.err[-2000:]}"
    # One plan per job: its parameter count and its tokens per optimizer step.
    jobs = 1
    if "-m" in args:
        jobs = 1
        for override in OverridesParser.create().parse_overrides([a for a in args if "=" in a]):
            if override.is_sweep_override():
                jobs *= len(list(override.sweep_string_iterator()))
    assert len(re.findall(r"^model\s+\S+: [\d,]+ parameters", captured.out, flags=re.M)) == jobs, captured.out
    assert not list(tmp_path.glob("runs/*/checkpoints"))  # a plan trains nothing


def test_the_paper_recipe_plans_its_parameter_count(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (command,) = {c for c in page_lines("python -m ttl.train model=160m trainer=a100") if c.endswith("a100")}
    main, args = entry(command)
    assert main([*args, "dry_run=true"]) == 0
    assert "160m: 162,417,408 parameters" in capsys.readouterr().out


@pytest.mark.slow
def test_tokenizer_and_prepared_shard_commands_run_as_written(tmp_path):
    """From a checkout (`ttl/data/sample` is the shipped corpus): the docs' tokenizer,
    prepare and shard-training commands, in full."""
    (tmp_path / "ttl").symlink_to(ROOT / "ttl")
    for prefix in ("python -m ttl.tokenizer data_path=ttl/data/sample",
                   "python -m ttl.data.prepare data_path=ttl/data/sample",
                   "python -m ttl.train experiment=quickstart data=shards"):
        (command,) = set(page_lines(prefix))
        result = run_cli(shlex.split(command)[1:], tmp_path, {"TTL_CACHE_DIR": str(tmp_path / "cache")})
        assert result.returncode == 0, (command, result.stderr[-3000:])
    assert (tmp_path / "data" / "sample-128" / "manifest.json").is_file()
    assert "final validation perplexity" in result.stdout
    assert (tmp_path / "runs" / "quickstart-shards" / "step-150" / "model.safetensors").is_file()
