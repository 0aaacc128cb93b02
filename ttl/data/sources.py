"""Documents of a text corpus, read through the `datasets` library one file ("unit") at a time.

`data.path` is a Hub dataset id (`owner/name`), a local directory (a copy of a Hub dataset
repository, such as `huggingface-cli download nicholasKluge/Pt-Corpus-Instruct
--repo-type dataset --local-dir DIR` makes, or any directory of parquet / jsonl / txt files),
or a single such file. `datasets.load_dataset_builder` decides which files make which split,
exactly as `datasets.load_dataset(path)` would (a README's YAML `configs:`, or names such as
`train-*` and `validation-*`): the Hub and a local copy take one code path.

A source with a validation split (`data.val_split`) keeps using it. Without one (Pt-Corpus-
Instruct has only `train`), the held-out rule of `ttl.data.holdout` sets documents of the
training split aside by their content, and the training side never sees them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ttl.data.holdout import HoldoutRule, rule_for
from ttl.errors import TTLError
from ttl.rundir import looks_like_hub_id

# File types a local source may hold, and the `datasets` builder that reads each.
BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".txt": "text"}
SUFFIXES = tuple(BUILDERS)


def sample_corpus_dir() -> Path:
    """Directory of the Portuguese sample corpus shipped with ttl (train-/validation- JSONL)."""
    from importlib import resources

    return Path(str(resources.files("ttl.data") / "sample"))


def _first_line(error: BaseException) -> str:
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
                f"{name}: not a complete parquet file ({_first_line(error)}); it may be cut short "
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
                raise TTLError(f"data.path={path}: unsupported file type (use {', '.join(SUFFIXES)})")
            loader, data_files = BUILDERS[local.suffix], {"train": [str(local)]}
    elif looks_like_hub_id(path):
        loader = path
    else:
        raise TTLError(f"data.path={path}: no such file or directory")
    try:
        builder = datasets.load_dataset_builder(loader, data_files=data_files)
    except (datasets.exceptions.DataFilesNotFoundError, FileNotFoundError) as error:
        if local.exists():
            raise TTLError(f"data.path={path}: no {', '.join(SUFFIXES)} files in this directory") from error
        raise TTLError(f"data.path={path}: {_first_line(error)}") from error
    except Exception as error:
        if local.exists():
            raise TTLError(f"data.path={path}: cannot be read as a dataset ({_first_line(error)})") from error
        raise TTLError(
            f"data.path={path}: not a local path, and the Hub dataset could not be opened "
            f"({_first_line(error)}); pass a local copy with data.path=DIR"
        ) from error
    if builder.name not in set(BUILDERS.values()):
        raise TTLError(f"data.path={path}: no {', '.join(SUFFIXES)} files "
                       f"{'in this directory' if local.exists() else 'in this dataset'} "
                       f"(datasets reads it as {builder.name!r})")
    splits = {str(name): [str(f) for f in files] for name, files in builder.config.data_files.items()}
    documents: dict[str, int | None] = {}
    columns = list(builder.info.features) if builder.info.features else None
    for name, files in splits.items():
        info = (builder.info.splits or {}).get(name)
        documents[name] = info.num_examples if info is not None and info.num_examples else None
        if not local.exists():
            continue
        if builder.name == "parquet":
            documents[name], schema = _parquet_rows(files)
            columns = columns or schema
    return Corpus(path=path, builder=builder.name, splits=splits, documents=documents,
                  columns=columns, hub=not local.exists())


def read_unit(corpus: Corpus, split: str, unit: int, column: str,
              batch_size: int = 256) -> Iterator[list[str]]:
    """The documents of one file of `split`, in file order, in lists of up to `batch_size`.

    Values that are not strings (None) become "". Any failure names the file.
    """
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
        raise TTLError(f"{name}: cannot be read ({_first_line(error)})") from error


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

    def keeps(self, text: str) -> bool:
        """Whether `text` belongs to this source's side of the held-out rule."""
        return self.holdout is None or self.holdout.held_out(text) == self.held_out

    def batches(self, unit: int, batch_size: int = 256) -> Iterator[list[str]]:
        """This source's documents of one unit (an index into `units`), in lists."""
        split, index = self.units[unit]
        for batch in read_unit(self.corpus, split, index, self.text_column, batch_size):
            kept = batch if self.holdout is None else [t for t in batch if self.keeps(t)]
            if kept:
                yield kept

    def documents(self, units: Sequence[int] | None = None) -> Iterator[str]:
        """Every document of the given units (all, by default), in order."""
        for unit in range(len(self.units)) if units is None else units:
            for batch in self.batches(unit):
                yield from batch


def resolve_source(path: str, split: str, text_column: str, train_split: str, val_split: str,
                   val_fraction: float, val_documents: int | None = None,
                   corpus: Corpus | None = None) -> TextSource:
    """The documents `ttl` reads for `split`: the training role (`train_split`), the validation
    role (`val_split`: that split if the corpus has one, else the held-out side of the
    training split), or any other split by name."""
    corpus = corpus or open_corpus(path)
    if split not in (train_split, val_split) or (split == val_split and val_split in corpus.splits):
        if split not in corpus.splits:
            raise TTLError(f"data.path={path}: no split {split!r} (splits: {', '.join(corpus.splits)})")
        return _checked(TextSource(corpus, (split,), text_column))
    if train_split not in corpus.splits:
        raise TTLError(f"data.path={path}: no split {train_split!r} (splits: {', '.join(corpus.splits)}); "
                       "set data.train_split")
    if val_split in corpus.splits:
        return _checked(TextSource(corpus, (train_split,), text_column))
    rule = rule_for(val_fraction, val_documents, corpus.documents.get(train_split),
                    f"the {train_split!r} split of {path}")
    return _checked(TextSource(corpus, (train_split,), text_column, rule, held_out=split == val_split))


def _checked(source: TextSource) -> TextSource:
    for split in source.splits:
        if source.corpus.documents.get(split) == 0:
            raise TTLError(f"data.path={source.corpus.path}: the {split!r} split holds no documents "
                           f"({', '.join(source.corpus.splits[split])})")
    columns = source.corpus.columns
    if columns is not None and source.text_column not in columns:
        raise TTLError(f"data.path={source.corpus.path}: no column {source.text_column!r} "
                       f"(columns: {', '.join(columns)}); set data.text_column")
    return source


def iter_documents(source: TextSource, units: Sequence[int] | None = None) -> Iterator[str]:
    """Every document of `source` (or of some of its units), in file order."""
    return source.documents(units)
