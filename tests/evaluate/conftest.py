"""Fixtures of the evaluation tests: the task fixtures served as the Hub datasets that upstream
lm-eval's okapi tasks read, so those tasks build and run offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tasks"
# Hub dataset (config pt) -> the fixture folder holding its splits in the Hub's layout.
HUB_FIXTURES = {"alexandrainst/m_arc": "arc_pt", "alexandrainst/m_hellaswag": "hellaswag_pt",
                "alexandrainst/m_truthfulqa": "truthfulqa_pt", "alexandrainst/m_mmlu": "mmlu_pt"}


@pytest.fixture
def fixture_hub(monkeypatch) -> dict[str, str]:
    """`datasets.load_dataset` answering alexandrainst's m_arc, m_hellaswag, m_truthfulqa and
    m_mmlu (config pt) with the fixture files, one split per `<split>.jsonl`; other datasets
    fail as offline ones do."""
    datasets = pytest.importorskip("datasets")

    def load_dataset(path: str, name: str | None = None, **kwargs) -> datasets.DatasetDict:
        if path not in HUB_FIXTURES or name != "pt":
            raise ConnectionError(f"{path}:{name}: offline (no fixture)")
        splits = {}
        for file in sorted((FIXTURES / HUB_FIXTURES[path]).glob("*.jsonl")):
            lines = file.read_text(encoding="utf-8").splitlines()
            rows = [json.loads(line) for line in lines if line.strip()]
            splits[file.stem] = datasets.Dataset.from_list(rows)
        return datasets.DatasetDict(splits)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return HUB_FIXTURES
