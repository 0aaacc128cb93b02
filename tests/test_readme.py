"""The README's commands, as a user copies them: tests, tokenizer, prepared shards."""

import re

import pytest

from .conftest import ROOT, run_cli


def readme_lines(prefix: str) -> list[str]:
    """Every line of the README's code blocks that starts with `prefix`."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith(prefix)]


def test_ci_runs_the_readme_test_commands_in_order():
    commands = list(dict.fromkeys(readme_lines("python -m pytest")))
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip().startswith("python -m pytest")]
    assert commands == ci == ["python -m pytest -q", "python -m pytest -q -m slow"]


def test_readme_examples_never_name_the_developers_shared_folder():
    blocks = re.findall(r"```(?:bash|python)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert not [b for b in blocks if "../shared" in b]


@pytest.mark.slow
def test_tokenizer_and_prepared_shard_commands_run_as_written(tmp_path):
    """From a checkout (`ttl/data/sample` is the shipped corpus): the README's tokenizer,
    prepare and shard-training commands."""
    (tmp_path / "ttl").symlink_to(ROOT / "ttl")
    for prefix in ("python -m ttl.tokenizer data_path=ttl/data/sample",
                   "python -m ttl.data.prepare data_path=ttl/data/sample",
                   "python -m ttl.train experiment=quickstart data=shards"):
        (command,) = readme_lines(prefix)
        result = run_cli(command.split()[1:], tmp_path, {"TTL_CACHE_DIR": str(tmp_path / "cache")})
        assert result.returncode == 0, (command, result.stderr[-3000:])
    assert (tmp_path / "data" / "sample-128" / "manifest.json").is_file()
    assert "final validation perplexity" in result.stdout
    assert (tmp_path / "runs" / "quickstart" / "step-150" / "model.safetensors").is_file()
