"""Documents of a text corpus, read through the `datasets` library one file ("unit") at a time.

`datasets.load_dataset_builder` decides which files make which split, exactly as
`datasets.load_dataset(path)` would, so the Hub and a local copy take one code path. A source
without a validation split gets one by the held-out rule of `ttl.data.holdout`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ttl.data.holdout import HoldoutRule, rule_for
from ttl.errors import TTLError
from ttl.rundir import looks_like_hub_id

# File types a local source may hold, and the `datasets` builder that reads each.
BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".txt": "text"}


def sample_corpus_dir() -> Path:
    """Directory of the Portuguese sample corpus shipped with ttl (train-/validation- JSONL)."""
    return Path(__file__).parent / "sample"


def first_line(error: BaseException) -> str:
    """The error's type and the first line of its message, for one-line TTLErrors."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}"


@dataclass(frozen=True)
class Corpus:
    """A corpus as `datasets` resolves it: its splits, each split's files, its document counts."""

    path: str
    # The `datasets` builder that reads the files: parquet, json or text.
    builder: str
    # Split name -> its files (local paths, or hf:// URLs pinned to a revision), in order, as
    # `datasets` resolved them once: later reads take exactly these files.
    splits: dict[str, list[str]]
    # Split name -> documents, where the metadata tells without reading the text.
    documents: dict[str, int | None] = field(default_factory=dict)
    columns: list[str] | None = None
    hub: bool = False


def _parquet_rows(files: list[str]) -> tuple[int, list[str]]:
    """Rows and columns of local parquet files from their footers; a file cut short fails
    here, named."""
    import pyarrow.parquet as pq

    rows, columns = 0, []
    for name in files:
        try:
            footer = pq.ParquetFile(name)
            rows += footer.metadata.num_rows
            columns = columns or footer.schema_arrow.names
        except Exception as error:  # pyarrow raises several types for damaged files
            raise TTLError(
                f"{name}: not a complete parquet file ({first_line(error)}); it may be cut short "
                "by an interrupted download: download it again"
            ) from error
    return rows, columns


def open_corpus(path: str) -> Corpus:
    """Resolve `data.path` into its splits and files (no document is read)."""
    import datasets

    local = Path(path).expanduser()
    data_files = None
    if local.exists():
        loader = str(local)
        if local.is_file():
            if local.suffix not in BUILDERS:
                raise TTLError(f"data.path={path}: unsupported file type (use {', '.join(BUILDERS)})")
            loader, data_files = BUILDERS[local.suffix], {"train": [str(local)]}
    elif looks_like_hub_id(path):
        loader = path
    else:
        raise TTLError(f"data.path={path}: no such file or directory")
    try:
        builder = datasets.load_dataset_builder(loader, data_files=data_files)
    except (datasets.exceptions.DataFilesNotFoundError, FileNotFoundError) as error:
        if local.exists():
            raise TTLError(f"data.path={path}: no {', '.join(BUILDERS)} files in this directory") from error
        raise TTLError(f"data.path={path}: {first_line(error)}") from error
    except Exception as error:
        if local.exists():
            raise TTLError(f"data.path={path}: cannot be read as a dataset ({first_line(error)})") from error
        raise TTLError(
            f"data.path={path}: not a local path, and the Hub dataset could not be opened "
            f"({first_line(error)}); pass a local copy with data.path=DIR"
        ) from error
    if builder.name not in set(BUILDERS.values()):
        raise TTLError(f"data.path={path}: no {', '.join(BUILDERS)} files "
                       f"{'in this directory' if local.exists() else 'in this dataset'} "
                       f"(datasets reads it as {builder.name!r})")
    splits = {str(name): [str(f) for f in files] for name, files in builder.config.data_files.items()}
    documents: dict[str, int | None] = {}
    columns = list(builder.info.features) if builder.info.features else None
    for name, files in splits.items():
        info = (builder.info.splits or {}).get(name)
        documents[name] = info.num_examples if info is not None and info.num_examples else None
        if local.exists() and builder.name == "parquet":
            documents[name], schema = _parquet_rows(files)
            columns = columns or schema
    return Corpus(path=path, builder=builder.name, splits=splits, documents=documents,
                  columns=columns, hub=not local.exists())


def read_unit(corpus: Corpus, split: str, unit: int, column: str,
              batch_size: int = 256) -> Iterator[list[str]]:
    """The documents of one file of `split`, in file order, in lists of up to `batch_size`
    (non-strings become ""); any failure names the file."""
    import datasets

    name = corpus.splits[split][unit]
    try:
        stream = datasets.load_dataset(corpus.builder, data_files={split: corpus.splits[split]},
                                       split=split, streaming=True)
        if stream.n_shards != len(corpus.splits[split]):
            raise TTLError(f"data.path={corpus.path}: datasets reads split {split!r} as "
                           f"{stream.n_shards} shards but lists {len(corpus.splits[split])} files")
        stream = stream.shard(num_shards=stream.n_shards, index=unit)
        if stream.column_names is not None and column not in stream.column_names:
            raise TTLError(f"{name}: no column {column!r} (columns: {', '.join(stream.column_names)}); "
                           "set data.text_column")
        for batch in stream.select_columns([column]).iter(batch_size=batch_size):
            yield [t if isinstance(t, str) else "" for t in batch[column]]
    except TTLError:
        raise
    except KeyError as error:
        raise TTLError(f"{name}: no column {column!r}; set data.text_column") from error
    except Exception as error:  # pyarrow, json and decoding errors of every kind
        raise TTLError(f"{name}: cannot be read ({first_line(error)})") from error


@dataclass(frozen=True)
class TextSource:
    """The documents of one role (training or validation): some splits of a corpus, perhaps
    filtered by the held-out rule (`held_out` picks the side)."""

    corpus: Corpus
    splits: tuple[str, ...]
    text_column: str = "text"
    holdout: HoldoutRule | None = None
    held_out: bool = False

    @property
    def units(self) -> list[tuple[str, int]]:
        """The (split, file index) pairs this source reads, in order."""
        return [(s, i) for s in self.splits for i in range(len(self.corpus.splits[s]))]

    @property
    def files(self) -> list[str]:
        """The files behind the units."""
        return [self.corpus.splits[s][i] for s, i in self.units]

    def describe(self) -> str:
        """A short human description for logs and error messages."""
        names = ", ".join(self.splits)
        where = f"{self.corpus.path} (split {names}"
        if self.holdout is not None:
            side = "held-out" if self.held_out else "not held-out"
            where += f", {side} documents: {self.holdout.fraction:.4%} held out by content hash"
        return where + ")"

    def documents(self) -> Iterator[str]:
        """Every document of this source (its side of the held-out rule), in file order."""
        for split, index in self.units:
            for batch in read_unit(self.corpus, split, index, self.text_column):
                for text in batch:
                    if self.holdout is None or self.holdout.held_out(text) == self.held_out:
                        yield text


def resolve_source(path: str, split: str, text_column: str, train_split: str, val_split: str,
                   val_fraction: float, val_documents: int | None = None,
                   corpus: Corpus | None = None) -> TextSource:
    """The documents `ttl` reads for `split`: the training role (`train_split`), the validation
    role (`val_split`: that split if the corpus has one, else the held-out side of the
    training split), or any other split by name."""
    corpus = corpus or open_corpus(path)
    known, rule = ", ".join(corpus.splits), None
    if split not in (train_split, val_split) or (split == val_split and val_split in corpus.splits):
        if split not in corpus.splits:
            raise TTLError(f"data.path={path}: no split {split!r} (splits: {known})")
        read = split
    elif train_split not in corpus.splits:
        raise TTLError(f"data.path={path}: no split {train_split!r} (splits: {known}); set data.train_split")
    else:
        read = train_split
        if val_split not in corpus.splits:
            rule = rule_for(val_fraction, val_documents, corpus.documents.get(train_split),
                            f"the {train_split!r} split of {path}")
    if corpus.documents.get(read) == 0:
        raise TTLError(f"data.path={corpus.path}: the {read!r} split holds no documents "
                       f"({', '.join(corpus.splits[read])})")
    if corpus.columns is not None and text_column not in corpus.columns:
        raise TTLError(f"data.path={corpus.path}: no column {text_column!r} "
                       f"(columns: {', '.join(corpus.columns)}); set data.text_column")
    return TextSource(corpus, (read,), text_column, rule, held_out=rule is not None and split == val_split)


def train_and_validation(path: str, s) -> tuple[TextSource, TextSource]:
    """The training and validation sources of `path` under the splits, text column and held-out
    rule of `s` (a `ttl.data.config.SplitSettings`), the corpus opened once."""
    corpus = open_corpus(path)
    return tuple(resolve_source(path, split, s.text_column, s.train_split, s.val_split,
                                s.val_fraction, s.val_documents, corpus=corpus)
                 for split in (s.train_split, s.val_split))


iter_documents = TextSource.documents
