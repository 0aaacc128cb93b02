"""ttl.data.datamodule: choosing the kind, validation rows, and refusing wrong shards."""

import itertools
import shutil

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ttl.data.batches import unpack_batch
from ttl.data.datamodule import DataSettings, TTLDataModule
from ttl.data.datamodule import datamodule as data_module
from ttl.data.streams import ValidationBatches
from ttl.errors import TTLError

from ..conftest import SHARED_DATA
from .conftest import SEQ_LEN, prepare_shards

LAYOUT = SHARED_DATA / "pt-corpus-instruct-layout"


def datamodule(path, tokenizer, **overrides):
    settings = DataSettings(path=str(path), seq_len=32, format="raw", tokenize_batch_size=8, **overrides)
    return TTLDataModule(settings, tokenizer, micro_batch_size=4)


def build(path, tokenizer, **data):
    return data_module(tokenizer, 4, path=str(path), seq_len=SEQ_LEN, **data)


def test_kind_follows_the_manifest_or_the_format_key(shard_dir, sample_dir, tiny_tokenizer):
    assert build(shard_dir, tiny_tokenizer).kind == "shards"
    # auto on raw text: shards prepared on first use (ttl.data.cache); raw on request.
    auto = build(sample_dir, tiny_tokenizer)
    assert auto.kind == "shards" and auto.backend.prepare_first
    assert build(sample_dir, tiny_tokenizer, format="raw").kind == "raw"
    with pytest.raises(TTLError, match=r"manifest.json: no manifest; prepare shards"):
        build(sample_dir, tiny_tokenizer, format="shards").setup("fit")
    with pytest.raises(TTLError, match="data.format='arrow'"):
        build(sample_dir, tiny_tokenizer, format="arrow")
    with pytest.raises(TypeError, match="shuffle_size"):  # from a config, Hydra names it (test_config)
        build(sample_dir, tiny_tokenizer, shuffle_size=3)
    with pytest.raises(TTLError, match="data.path is required"):
        build("???", tiny_tokenizer)


def test_setup_is_idempotent_and_batches_are_dicts(shard_dir, tiny_tokenizer):
    dm = build(shard_dir, tiny_tokenizer, document_masking=True)
    dm.setup("fit")
    stream = dm.train_dataset
    dm.setup("fit")
    assert dm.train_dataset is stream
    train = next(iter(dm.train_dataloader()))
    val = next(iter(dm.val_dataloader()))
    for batch in (train, val):
        assert set(batch) == {"input_ids", "position_ids"} and batch["input_ids"].dtype == torch.long
        assert batch["input_ids"].shape == (4, SEQ_LEN)


def test_raw_workers_and_ranks_are_the_same_document_slots(sample_dir, tiny_tokenizer):
    """2 workers on 1 rank = 1 worker on each of 2 ranks: documents dealt to 2 slots alike."""
    two = datamodule(sample_dir, tiny_tokenizer, num_workers=2)
    two.setup("fit")
    double = [b["input_ids"] for b in itertools.islice(two.train_dataloader(), 40)]
    per_rank = []
    for rank in (0, 1):
        dm = datamodule(sample_dir, tiny_tokenizer)
        dm.setup("fit")
        stream = dm.train_dataset
        stream.rank, stream.world_size = rank, 2
        per_rank.append([unpack_batch(b)["input_ids"] for b in itertools.islice(iter(stream), 20)])
    assert all(torch.equal(a, b) for a, b in zip(double[0::2], per_rank[0], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(double[1::2], per_rank[1], strict=True))
    seen = [tuple(r.tolist()) for b in double for r in b]
    assert len(set(seen)) == len(seen)  # nothing seen twice


def test_validation_is_fixed_in_order_and_split_between_ranks(shard_dir, tiny_tokenizer):
    dm = build(shard_dir, tiny_tokenizer)
    dm.setup("fit")
    blocks = dm.val_dataset.blocks
    assert blocks.dtype == torch.long and blocks.shape[1] == SEQ_LEN and blocks.shape[0] > 10
    # A micro-batch that leaves an odd number of batches: rank 1 is one short.
    micro = next(m for m in (3, 4, 5, 6, 7) if -(-len(blocks) // m) % 2)
    parts = [[unpack_batch(b) for b in ValidationBatches(dm.val_dataset.rows, micro, False, "ttl", rank, 2)]
             for rank in (0, 1)]
    # Every rank runs the same number of forward passes (FSDP's are collective)...
    assert len(parts[0]) == len(parts[1])
    padding = [b for b in parts[1] if "labels" in b and bool((b["labels"] == -100).all())]
    assert len(padding) == 1 and padding[0]["input_ids"].shape == (micro, SEQ_LEN)
    # ...and every validation row is scored exactly once.
    seen = torch.cat([b["input_ids"] for part in parts for b in part if not any(b is x for x in padding)])
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, blocks.tolist()))


def test_raw_validation_covers_the_split_in_order(sample_dir, tiny_tokenizer):
    dm = datamodule(sample_dir, tiny_tokenizer)
    dm.setup("fit")
    again = datamodule(sample_dir, tiny_tokenizer)
    again.setup("fit")
    assert torch.equal(again.val_dataset.blocks, dm.val_dataset.blocks)
    assert dm.val_dataset.blocks.shape[0] > 10


def test_validation_smaller_than_a_block_is_refused(tmp_path, tiny_tokenizer):
    (tmp_path / "train.txt").write_text("uma linha de treino bem comprida\n" * 50)
    (tmp_path / "validation.txt").write_text("curta\n")
    with pytest.raises(TTLError, match="fewer tokens than one block of data.seq_len=32"):
        datamodule(tmp_path, tiny_tokenizer).setup("fit")


def test_unknown_packing_is_refused(sample_dir, tiny_tokenizer):
    with pytest.raises(TTLError, match="data.packing='gpt'"):
        datamodule(sample_dir, tiny_tokenizer, packing="gpt")


def test_shards_of_another_tokenizer_are_refused(shard_dir, tmp_path, sample_dir):
    from ttl.tokenizer import train_from_path

    other = train_from_path(str(sample_dir), tmp_path / "other", vocab_size=1024)
    with pytest.raises(TTLError, match=r"manifest.json: shards were tokenized with .*fingerprint"):
        build(shard_dir, other).setup("fit")


def test_shards_of_another_seq_len_or_packing_are_refused(shard_dir, tiny_tokenizer):
    with pytest.raises(TTLError, match=r"manifest.json: shards hold rows of seq_len=32 but data.seq_len=64"):
        TTLDataModule(DataSettings(path=str(shard_dir), seq_len=64), tiny_tokenizer, 4).setup("fit")
    with pytest.raises(TTLError, match=r"packed with packing='ttl' but data.packing='eos'"):
        build(shard_dir, tiny_tokenizer, packing="eos").setup("fit")


def test_truncated_shard_is_named(shard_dir, tiny_tokenizer, tmp_path):
    copy = shutil.copytree(shard_dir, tmp_path / "copy")
    victim = copy / "train" / "shard-00000-00001.parquet"
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(TTLError, match=r"shard-00000-00001.parquet: shard has .* bytes but the manifest"):
        build(copy, tiny_tokenizer).setup("fit")


def test_corrupt_shard_is_named_when_read(shard_dir, tiny_tokenizer, tmp_path):
    copy = shutil.copytree(shard_dir, tmp_path / "copy")
    victim = copy / "train" / "shard-00000-00000.parquet"
    data = bytearray(victim.read_bytes())
    data[100:400] = bytes(300)  # same size, damaged first data page
    victim.write_bytes(bytes(data))
    dm = build(copy, tiny_tokenizer, shuffle=False)
    dm.setup("fit")
    with pytest.raises(TTLError, match=r"shard-00000-00000.parquet: row group 0 is unreadable"):
        next(iter(dm.train_dataloader()))


def test_hub_shards_while_offline_are_a_clear_error(tiny_tokenizer):
    with pytest.raises(TTLError, match="someone/shards-not-cached: not a local directory.*could not be"):
        build("someone/shards-not-cached", tiny_tokenizer, format="shards").setup("fit")


def test_too_few_rows_for_the_devices_is_refused(sample_dir, tiny_tokenizer_dir, tmp_path, tiny_tokenizer):
    small = tmp_path / "small"
    (small / "data").mkdir(parents=True)
    text = "documento de teste com algumas palavras\n"
    (small / "data" / "train.txt").write_text(text * 6)
    (small / "data" / "validation.txt").write_text(text * 6)
    out = prepare_shards(small / "data", tiny_tokenizer_dir, small / "out")
    dm = TTLDataModule(DataSettings(path=str(out), seq_len=SEQ_LEN), tiny_tokenizer, 64)
    dm.setup("fit")
    with pytest.raises(TTLError, match=r"holds \d+ rows, fewer than one micro-batch \(64\)"):
        dm.train_dataloader()
    assert np.all(dm.val_dataset.rows.ids >= 0)


@pytest.mark.parametrize("group", ["sample", "pt_corpus", "text_files", "shards"])
def test_every_data_config_builds_a_datamodule_that_reads(group, shard_dir, tiny_tokenizer, tmp_path,
                                                          prepared_cache):
    from hydra import compose, initialize_config_module

    from ttl.cli import register_resolvers

    if group == "pt_corpus" and not LAYOUT.is_dir():
        pytest.skip(f"{LAYOUT} is not available on this machine")
    (tmp_path / "text.txt").write_text("".join(f"linha {i} de um texto qualquer em português\n"
                                               for i in range(400)))
    register_resolvers()
    path = {"shards": [f"data.path={shard_dir}"], "text_files": [f"data.path={tmp_path / 'text.txt'}"],
            "pt_corpus": [f"data.path={LAYOUT}"]}
    with initialize_config_module("ttl.conf", version_base="1.3"):
        cfg = compose("train", overrides=["experiment=quickstart", f"data={group}", "seed=5",
                                          f"data.seq_len={SEQ_LEN}", f"data.prepared_dir={prepared_cache}",
                                          *path.get(group, [])])
    dm = instantiate(cfg.data, tokenizer=tiny_tokenizer, micro_batch_size=4)
    assert dm.settings.seed == 5 and dm.kind == ("raw" if group == "sample" else "shards")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, SEQ_LEN) and len(dm.val_dataset.rows) > 0
    record = dm.describe()
    # Sources without a validation split hold documents out by content hash, and say so.
    assert (record["holdout"] is not None) == (group in ("pt_corpus", "text_files"))
