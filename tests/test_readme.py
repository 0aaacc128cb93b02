"""The README's test commands are CI's, and its examples never name the developers' folders
(every other command of the README and docs/ is checked in tests/test_docs.py)."""

import re

from .conftest import ROOT


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
