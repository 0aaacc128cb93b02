"""Documents from local parquet / jsonl / txt files or a Hub dataset, streamed one at a time.

A local directory in the Pt-Corpus layout holds `train-*.parquet` and `validation-*.parquet`
(or .jsonl / .txt). Without files named for the validation split, every k-th training
document (k = round(1 / val_fraction)) is held out for validation instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ttl.errors import TTLError

SUFFIXES = (".parquet", ".jsonl", ".json", ".txt")


@dataclass(frozen=True)
class TextSource:
    """Where a split's documents come from: local files, or a Hub dataset id and split."""

    files: tuple[Path, ...] = ()
    hub_id: str | None = None
    hub_split: str | None = None
    text_column: str = "text"
    # (k, keep): take documents whose index i satisfies (i % k == 0) == keep; None = all.
    holdout: tuple[int, bool] | None = None

    def describe(self) -> str:
        """A short human description for logs and error messages."""
        if self.hub_id:
            return f"{self.hub_id} (split {self.hub_split})"
        names = ", ".join(str(f) for f in self.files[:3])
        return names + (f" and {len(self.files) - 3} more" if len(self.files) > 3 else "")


def _split_files(directory: Path, split: str) -> list[Path]:
    found: list[Path] = []
    for pattern in (f"{split}-*", f"{split}.*", f"{split}/*", f"*/{split}-*"):
        found = sorted(p for p in directory.glob(pattern) if p.suffix in SUFFIXES and p.is_file())
        if found:
            break
    return found


def resolve_source(
    path: str, split: str, text_column: str, train_split: str, val_split: str, val_fraction: float
) -> TextSource:
    """Resolve `data.path` and a split role ("train" or "validation") into a `TextSource`."""
    role_is_val = split == val_split
    local = Path(path).expanduser()
    if local.exists():
        if local.is_file():
            if local.suffix not in SUFFIXES:
                raise TTLError(f"data.path={path}: unsupported file type (use {', '.join(SUFFIXES)})")
            files = [local]
            held_out = True
        else:
            files = _split_files(local, split)
            held_out = False
            if not files:
                files = _split_files(local, train_split) or sorted(
                    p for p in local.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                )
                held_out = True
            if not files:
                raise TTLError(f"data.path={path}: no {', '.join(SUFFIXES)} files in this directory")
        holdout = None
        if held_out:
            if not 0 < val_fraction < 1:
                raise TTLError(f"data.val_fraction={val_fraction} must be between 0 and 1")
            holdout = (max(2, round(1 / val_fraction)), role_is_val)
        return TextSource(files=tuple(files), text_column=text_column, holdout=holdout)
    if path.count("/") == 1 and not path.startswith((".", "/", "~")):
        return TextSource(hub_id=path, hub_split=split, text_column=text_column)
    raise TTLError(f"data.path={path}: no such file or directory")


def _read_parquet(path: Path, column: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        if column not in reader.schema_arrow.names:
            raise TTLError(
                f"{path}: no column {column!r} (columns: {', '.join(reader.schema_arrow.names)}); "
                "set data.text_column"
            )
        for batch in reader.iter_batches(batch_size=256, columns=[column]):
            yield from batch.column(0).to_pylist()
    except TTLError:
        raise
    except Exception as error:  # pyarrow raises several types for damaged files
        raise TTLError(f"{path}: unreadable parquet file ({error})") from error


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise TTLError(f"{path}:{number}: not valid UTF-8 ({error.reason})") from error


def _read_jsonl(path: Path, column: str) -> Iterator[str]:
    for number, line in _read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TTLError(f"{path}:{number}: invalid JSON ({error.msg})") from error
        if column not in record:
            raise TTLError(f"{path}:{number}: no field {column!r}; set data.text_column")
        yield record[column]


def _read_txt(path: Path) -> Iterator[str]:
    # One document per line, as the `datasets` text loader reads it.
    for _, line in _read_lines(path):
        yield line.rstrip("\n")


def _read_file(path: Path, column: str) -> Iterator[str]:
    if path.suffix == ".parquet":
        return _read_parquet(path, column)
    if path.suffix in (".jsonl", ".json"):
        return _read_jsonl(path, column)
    return _read_txt(path)


def _read_hub(source: TextSource) -> Iterator[str]:
    import datasets

    try:
        stream = datasets.load_dataset(source.hub_id, split=source.hub_split, streaming=True)
    except Exception as error:
        raise TTLError(
            f"data.path={source.hub_id}: not a local path, and the Hub dataset could not be "
            f"opened ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "pass a local copy with data.path=DIR"
        ) from error
    for record in stream:
        yield record[source.text_column]


def iter_documents(source: TextSource, file_order: list[int] | None = None) -> Iterator[str]:
    """Every document of `source` in order (None and non-string values become "").

    `file_order` reads the local files in another order (a shuffled pass); it is refused for
    held-out splits, whose membership depends on each document's index in the usual order.
    """
    if file_order is not None and source.holdout is not None:
        raise ValueError("file_order cannot be used with a held-out split")
    files = source.files if file_order is None else [source.files[i] for i in file_order]
    raw = _read_hub(source) if source.hub_id else (
        text for path in files for text in _read_file(path, source.text_column)
    )
    for index, text in enumerate(raw):
        if source.holdout is not None:
            k, keep = source.holdout
            if (index % k == 0) != keep:
                continue
        yield text if isinstance(text, str) else ""
