"""ttl.data.prepare: shard round trip against the manifest, the CLI, and bad inputs."""

import json

import numpy as np
import pytest

from ttl.data.manifest import read_manifest
from ttl.data.shards import ShardReader
from ttl.data.sources import iter_documents, resolve_source
from ttl.errors import TTLError

from ..conftest import run_cli
from .conftest import SEQ_LEN, prepare_shards


def stored_rows(root, split):
    manifest = read_manifest(root)
    reader = ShardReader(root, manifest.splits[split].shards, manifest.seq_len)
    parts = [reader.read(c) for c in reader.chunks]
    return np.concatenate([p.ids for p in parts]), [s for p in parts for s in p.doc_starts]


@pytest.mark.parametrize("split", ["train", "validation"])
def test_shards_hold_exactly_the_packed_token_stream(shard_dir, sample_dir, tiny_tokenizer, split):
    texts = [t for t in iter_documents(resolve_source(str(sample_dir), split, "text", "train",
                                                      "validation", 0.01)) if t.strip()]
    # The ttl convention straight from the tokenizer: <s>, then the document's ids.
    bos = tiny_tokenizer.bos_token_id
    encoded = [tiny_tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    stream = [t for ids in encoded for t in [bos, *ids]]
    ids, starts = stored_rows(shard_dir, split)
    info = read_manifest(shard_dir).splits[split]
    assert ids.dtype == np.uint16 and ids.shape == (info.rows, SEQ_LEN)
    assert ids.ravel().tolist() == stream[: ids.size]
    assert info.tokens == ids.size and info.dropped_tokens == len(stream) - ids.size < SEQ_LEN
    assert info.documents == len(texts) and info.long_documents > 0  # split across rows, kept
    assert [s.tolist() for s in starts] == [np.flatnonzero(r == 1).tolist() for r in ids]
    assert sum(s.rows for s in info.shards) == info.rows


def test_manifest_records_tokenizer_source_and_layout(shard_dir, tiny_tokenizer):
    from ttl.data.fingerprint import tokenizer_fingerprint

    manifest = read_manifest(shard_dir)
    assert manifest.tokenizer_fingerprint == tokenizer_fingerprint(tiny_tokenizer)
    assert (manifest.seq_len, manifest.packing, manifest.dtype, manifest.vocab_size) == \
        (SEQ_LEN, "ttl", "uint16", 2048)
    shards = manifest.splits["train"].shards
    assert len(shards) > 1 and all(len(s.row_groups) <= 4 for s in shards)
    assert json.loads((shard_dir / "manifest.json").read_text())["fingerprint"] == manifest.fingerprint


def test_output_does_not_depend_on_the_number_of_processes(shard_dir, sample_dir, tiny_tokenizer_dir,
                                                           tmp_path):
    again = prepare_shards(sample_dir, tiny_tokenizer_dir, tmp_path / "two", num_proc=2)
    assert read_manifest(again).fingerprint == read_manifest(shard_dir).fingerprint
    for split in ("train", "validation"):
        assert np.array_equal(stored_rows(again, split)[0], stored_rows(shard_dir, split)[0])


def test_cli_prepares_counts_empty_documents_and_warns(tmp_path, tiny_tokenizer_dir):
    lines = [{"text": f"documento número {i} sobre capivaras e tamanduás"} for i in range(60)]
    lines[3]["text"] = lines[10]["text"] = "   "
    lines[20]["text"] = None
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (corpus / "validation.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines[:30]))
    out = tmp_path / "out"
    result = run_cli(["-m", "ttl.data.prepare", f"data_path={corpus}", f"tokenizer={tiny_tokenizer_dir}",
                      f"output_dir={out}", "seq_len=16", "num_proc=1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipped 3 empty documents in the train split" in result.stderr
    manifest = read_manifest(out)
    assert manifest.splits["train"].empty_documents == 3 and manifest.splits["train"].documents == 57
    assert "train:" in result.stdout and "tokens/s" in result.stdout
    assert not (tmp_path / "out.partial").exists()


def test_cli_refuses_unknown_keys_and_bad_values(tmp_path):
    unknown = run_cli(["-m", "ttl.data.prepare", "seqlen=5"], cwd=tmp_path)
    assert unknown.returncode == 1 and "Could not override 'seqlen'" in unknown.stderr
    bad = run_cli(["-m", "ttl.data.prepare", "data_path=x", "tokenizer=y", "output_dir=z", "seq_len=0"],
                  cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "ttl.data.prepare: error: seq_len=0: must be at least 1"]


def test_existing_output_is_refused(shard_dir, sample_dir, tiny_tokenizer_dir):
    with pytest.raises(TTLError, match="already exists; choose another or pass overwrite=true"):
        prepare_shards(sample_dir, tiny_tokenizer_dir, shard_dir)


def test_non_utf8_text_names_the_file(tmp_path, tiny_tokenizer_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_bytes(b"linha boa\n" * 5 + b"\xff\xfe linha ruim\n")
    (corpus / "validation.txt").write_text("linha boa\n" * 5)
    with pytest.raises(TTLError, match=r"train.txt: cannot be read \(UnicodeDecodeError"):
        prepare_shards(corpus, tiny_tokenizer_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_split_smaller_than_one_row_is_refused(tmp_path, tiny_tokenizer_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("uma linha de treino bem comprida\n" * 50)
    (corpus / "validation.txt").write_text("curta\n")
    with pytest.raises(TTLError, match="the validation split .* fewer than one row of seq_len=32"):
        prepare_shards(corpus, tiny_tokenizer_dir, tmp_path / "out")


def test_hub_id_while_offline_is_a_clear_error(tmp_path, tiny_tokenizer_dir):
    with pytest.raises(TTLError, match="someone/not-cached.*pass a local copy"):
        prepare_shards("someone/not-cached", tiny_tokenizer_dir, tmp_path / "out")
