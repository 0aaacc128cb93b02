"""ttl.data.sources: local formats, split layout, hold-out, and bad inputs."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttl.data.sources import iter_documents, resolve_source
from ttl.errors import TTLError


def source(path, split="train", val_fraction=0.25):
    return resolve_source(str(path), split, "text", "train", "validation", val_fraction)


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t, "metadata": "x"}) + "\n" for t in texts))


def test_pt_corpus_layout_reads_each_split(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"], "metadata": ["m", "m"]}),
                   tmp_path / "train-00000-of-00001.parquet")
    write_jsonl(tmp_path / "validation-00000-of-00001.jsonl", ["v"])
    assert list(iter_documents(source(tmp_path))) == ["a", "b"]
    assert list(iter_documents(source(tmp_path, "validation"))) == ["v"]


def test_single_file_is_split_by_holdout_disjoint_and_complete(tmp_path):
    texts = [f"doc {i}" for i in range(20)]
    (tmp_path / "all.txt").write_text("\n".join(texts) + "\n")
    train = list(iter_documents(source(tmp_path / "all.txt")))
    val = list(iter_documents(source(tmp_path / "all.txt", "validation")))
    assert len(val) == 5 and not set(train) & set(val) and sorted(train + val) == sorted(texts)


def test_shipped_sample_corpus_has_both_splits(sample_dir):
    train = list(iter_documents(source(sample_dir)))
    val = list(iter_documents(source(sample_dir, "validation")))
    assert len(train) > 50 and len(val) >= 5
    assert sum(len(t.encode()) for t in train + val) > 100_000


def test_missing_path_names_it(tmp_path):
    with pytest.raises(TTLError, match="data.path=.*nope: no such file or directory"):
        source(tmp_path / "nope")


def test_corrupt_parquet_names_the_file(tmp_path):
    bad = tmp_path / "train-00000.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TTLError, match="train-00000.parquet: unreadable parquet"):
        list(iter_documents(source(tmp_path)))


def test_non_utf8_text_names_file_and_line(tmp_path):
    bad = tmp_path / "train.txt"
    bad.write_bytes(b"boa linha\n" + b"\xff\xfe ruim\n")
    with pytest.raises(TTLError, match=r"train.txt:2: not valid UTF-8"):
        list(iter_documents(source(bad)))


def test_missing_text_column_is_named(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"content": "x"}\n')
    with pytest.raises(TTLError, match="no field 'text'; set data.text_column"):
        list(iter_documents(source(tmp_path / "train.jsonl")))


def test_hub_id_while_offline_is_a_clear_error():
    hub = source("someone/some-dataset-that-is-not-cached")
    assert hub.hub_id == "someone/some-dataset-that-is-not-cached"
    with pytest.raises(TTLError, match="pass a local copy with data.path=DIR"):
        next(iter_documents(hub))
