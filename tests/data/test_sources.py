"""ttl.data.sources: split layout as `datasets` resolves it, the held-out side, bad inputs."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttl.data.holdout import HoldoutRule
from ttl.data.sources import iter_documents, open_corpus, resolve_source
from ttl.errors import TTLError


def source(path, split="train", val_fraction=0.25, val_documents=None):
    return resolve_source(str(path), split, "text", "train", "validation", val_fraction, val_documents)


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t, "metadata": "x"}) + "\n" for t in texts))


def test_a_directory_with_split_files_reads_each_split_without_holding_out(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"], "metadata": ["m", "m"]}),
                   tmp_path / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"text": ["v"], "metadata": ["m"]}),
                   tmp_path / "validation-00000-of-00001.parquet")
    train, val = source(tmp_path), source(tmp_path, "validation")
    assert list(iter_documents(train)) == ["a", "b"] and train.holdout is None
    assert list(iter_documents(val)) == ["v"] and val.holdout is None
    assert open_corpus(str(tmp_path)).documents == {"train": 2, "validation": 1}


def test_a_single_file_is_split_by_content_disjoint_and_complete(tmp_path):
    texts = [f"doc {i}" for i in range(200)]
    (tmp_path / "all.txt").write_text("\n".join(texts) + "\n")
    train = list(iter_documents(source(tmp_path / "all.txt")))
    val = list(iter_documents(source(tmp_path / "all.txt", "validation")))
    rule = HoldoutRule(0.25)
    assert val == [t for t in texts if rule.held_out(t)] and 30 < len(val) < 70
    assert not set(train) & set(val) and sorted(train + val) == sorted(texts)


def test_val_documents_sets_the_share_from_the_known_count(tmp_path):
    pq.write_table(pa.table({"text": [f"texto {i}" for i in range(1000)]}), tmp_path / "corpus.parquet")
    held = source(tmp_path / "corpus.parquet", "validation", val_documents=100)
    assert held.holdout.fraction == pytest.approx(0.1) and 60 < len(list(iter_documents(held))) < 140
    with pytest.raises(TTLError, match="data.val_documents=1000: .* holds only 1,000 documents"):
        source(tmp_path / "corpus.parquet", "validation", val_documents=1000)
    (tmp_path / "c.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(TTLError, match="not known before reading it; set data.val_fraction"):
        source(tmp_path / "c.jsonl", "validation", val_documents=10)


def test_shipped_sample_corpus_has_both_splits(sample_dir):
    train = list(iter_documents(source(sample_dir)))
    val = list(iter_documents(source(sample_dir, "validation")))
    assert len(train) > 50 and len(val) >= 5
    assert sum(len(t.encode()) for t in train + val) > 100_000


def test_missing_path_names_it(tmp_path):
    with pytest.raises(TTLError, match="data.path=.*nope: no such file or directory"):
        source(tmp_path / "nope")


def test_a_directory_without_text_files_is_named(tmp_path):
    (tmp_path / "notes.md").write_text("nada")
    with pytest.raises(TTLError, match="no .parquet, .jsonl, .json, .txt files in this directory"):
        source(tmp_path)


def test_a_parquet_file_cut_short_is_named_before_anything_is_read(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"text": [f"documento {i} " * 50 for i in range(500)]}), whole)
    (tmp_path / "data").mkdir()
    cut = whole.read_bytes()[: whole.stat().st_size // 2]
    (tmp_path / "data" / "train-00000-of-00001.parquet").write_bytes(cut)
    with pytest.raises(TTLError, match=r"train-00000-of-00001.parquet: not a complete parquet file "
                                       r".*cut short.*download it again"):
        open_corpus(str(tmp_path / "data"))


def test_non_utf8_text_names_the_file(tmp_path):
    bad = tmp_path / "train.txt"
    bad.write_bytes(b"boa linha\n" + b"\xff\xfe ruim\n")
    with pytest.raises(TTLError, match=r"train.txt: cannot be read \(UnicodeDecodeError"):
        list(iter_documents(source(bad)))


def test_missing_text_column_is_named(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"content": "x"}\n')
    with pytest.raises(TTLError, match=r"no column 'text' \(columns: content\); set data.text_column"):
        list(iter_documents(source(tmp_path / "train.jsonl")))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(TTLError, match=r"data.path=.*t.parquet: no column 'text' \(columns: body\)"):
        source(tmp_path / "t.parquet")


def test_a_split_that_does_not_exist_is_named(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ["a"])
    with pytest.raises(TTLError, match=r"no split 'test' \(splits: train\)"):
        source(tmp_path, "test")


def test_hub_id_while_offline_is_a_clear_error():
    with pytest.raises(TTLError, match="someone/some-dataset.*could not be opened.*pass a local copy"):
        source("someone/some-dataset-that-is-not-cached")
