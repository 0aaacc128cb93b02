"""One loader for every ttl task's data: `<tasks_dir>/<folder>/<split>.jsonl` when that folder
exists, else the task's Hub dataset. Both give a dict split -> list of rows, so the task code
after it (layout, few-shot pool, prompts) is the same for both paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ttl.evaluate.lm_eval_tasks.catalog import TASK_DATA, TaskData

if TYPE_CHECKING:
    import datasets


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file (blank lines skipped); a bad line names file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error})") from error
    return rows


def local_folder(data: TaskData, tasks_dir: str | None) -> Path | None:
    """`<tasks_dir>/<folder>` if it exists (or `tasks_dir` itself when it is that folder)."""
    if not tasks_dir:
        return None
    root = Path(tasks_dir).expanduser()
    for candidate in (root / data.folder, root):
        if candidate.name == data.folder and candidate.is_dir() and any(candidate.glob("*.jsonl")):
            return candidate
    return None


def data_source(data: TaskData, tasks_dir: str | None) -> str:
    """Where a task's data will come from: the local folder, else `hub:<id>`."""
    folder = local_folder(data, tasks_dir)
    if folder is not None:
        return str(folder)
    if data.hub_path is None:
        raise ValueError(f"no {data.folder}/ folder with JSONL splits in tasks_dir={tasks_dir} (this "
                         "task has no Hub dataset; give tasks_dir as task metadata, e.g. --metadata "
                         "'{\"tasks_dir\": \"DIR\"}')")
    return f"hub:{data.hub_id}"


def load_splits(data: TaskData, tasks_dir: str | None, splits: tuple[str, ...]) -> dict[str, list[dict]]:
    """The rows of `splits` (each a list of dicts), from the local folder or the Hub."""
    source = data_source(data, tasks_dir)
    if not source.startswith("hub:"):
        out = {}
        for split in splits:
            path = Path(source) / f"{split}.jsonl"
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found (tasks_dir={tasks_dir}; the {data.folder}/ "
                                        f"folder needs {', '.join(s + '.jsonl' for s in splits)})")
            out[split] = read_jsonl(path)
        return out
    import datasets

    loaded = datasets.load_dataset(data.hub_path, data.hub_name)
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise ValueError(f"Hub dataset {data.hub_id} has no split {missing[0]!r} (has {list(loaded)})")
    return {split: loaded[split].to_list() for split in splits}


def load_all_rows(data: TaskData, tasks_dir: str | None, hub_split: str) -> list[dict]:
    """Every row of a task whose benchmark uses its whole dataset: all `<split>.jsonl` files of
    the local folder (train, validation, test, then others by name), else the Hub split."""
    folder = local_folder(data, tasks_dir)
    if folder is None:
        return load_splits(data, tasks_dir, (hub_split,))[hub_split]
    order = {"train": 0, "validation": 1, "test": 2}
    files = sorted(folder.glob("*.jsonl"), key=lambda p: (order.get(p.stem, 3), p.stem))
    return [row for path in files for row in read_jsonl(path)]


def to_datasets(splits: dict[str, list[dict]]) -> datasets.DatasetDict:
    """Rows per split as the `datasets.DatasetDict` lm-eval's custom_dataset returns."""
    import datasets

    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def load_task(task: str, tasks_dir: str | None = None, **metadata) -> datasets.DatasetDict:
    """A task's `TaskData.splits` as they are (the custom_dataset of the Okapi and last-word tasks,
    bound to a task name; lm-eval passes the task metadata, tasks_dir among it)."""
    data = TASK_DATA[task]
    return to_datasets(load_splits(data, tasks_dir, data.splits))
