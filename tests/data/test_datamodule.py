"""ttl.data.datamodule: reading or preparing shards, validation rows, and refusing wrong shards."""

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


def prepared(path, tokenizer, prepared_dir, **overrides):
    """data.format=auto on raw text at `path`: shards prepared into `prepared_dir` on first use."""
    settings = DataSettings(path=str(path), seq_len=SEQ_LEN, prepared_dir=str(prepared_dir),
                            prepare_num_proc=1, **overrides)
    return TTLDataModule(settings, tokenizer, micro_batch_size=4)


def build(path, tokenizer, **data):
    return data_module(tokenizer, 4, path=str(path), seq_len=SEQ_LEN, **data)


def test_auto_reads_a_manifest_or_prepares_raw_text_first(shard_dir, sample_dir, tiny_tokenizer):
    assert not build(shard_dir, tiny_tokenizer).prepare_first
    assert not build(shard_dir, tiny_tokenizer, format="shards").prepare_first
    # auto on raw text: shards prepared on first use (ttl.data.cache).
    assert build(sample_dir, tiny_tokenizer).prepare_first
    with pytest.raises(TTLError, match=r"manifest.json: no manifest; prepare shards"):
        build(sample_dir, tiny_tokenizer, format="shards").setup("fit")
    with pytest.raises(TTLError, match="data.format='arrow'"):
        build(sample_dir, tiny_tokenizer, format="arrow")
    with pytest.raises(TypeError, match="shuffle_size"):  # from a config, Hydra names it (test_config)
        build(sample_dir, tiny_tokenizer, shuffle_size=3)
    with pytest.raises(TTLError, match="data.path is required"):
        build("???", tiny_tokenizer)


def test_format_raw_is_refused_naming_format_auto(sample_dir, tiny_tokenizer):
    """Raw streaming was removed (house round 3): one line says so and what replaces it."""
    expected = (r"data.format=raw: raw streaming \(tokenizing on the fly\) was removed; "
                r"data.format=auto \(the default\) prepares the same text into shards on first use")
    with pytest.raises(TTLError, match=expected):
        build(sample_dir, tiny_tokenizer, format="raw")
    with pytest.raises(TTLError, match=expected):
        DataSettings(path=str(sample_dir), format="raw").validate()
    # Its keys are gone: from a config Hydra names them as unknown keys (test_config).
    for key in ("shuffle_buffer", "tokenize_batch_size"):
        with pytest.raises(TypeError, match=key):
            build(sample_dir, tiny_tokenizer, **{key: 16})


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


def test_validation_of_raw_text_is_fixed_and_spread_evenly_over_the_split(sample_dir, tiny_tokenizer,
                                                                          prepared_cache):
    dm = prepared(sample_dir, tiny_tokenizer, prepared_cache, max_val_blocks=None)
    dm.setup("fit")
    again = prepared(sample_dir, tiny_tokenizer, prepared_cache, max_val_blocks=None)
    again.setup("fit")
    every = dm.val_dataset.blocks
    assert torch.equal(again.val_dataset.blocks, every) and every.shape[0] > 10
    assert dm.describe()["validation"]["rows_used"] == dm.describe()["validation"]["rows"] == len(every)
    # A cap takes rows evenly spaced over the split (its files are in source order), first and
    # last included, not its first rows.
    capped = prepared(sample_dir, tiny_tokenizer, prepared_cache, max_val_blocks=5)
    capped.setup("fit")
    wanted = np.linspace(0, len(every) - 1, 5).round().astype(np.int64)
    assert torch.equal(capped.val_dataset.blocks, every[wanted])
    assert capped.describe()["validation"]["rows_used"] == 5


def test_validation_smaller_than_a_block_is_refused(tmp_path, tiny_tokenizer):
    text = tmp_path / "text"
    text.mkdir()
    (text / "train.txt").write_text("uma linha de treino bem comprida\n" * 50)
    (text / "validation.txt").write_text("curta\n")
    # The first-use preparation refuses it before anything is written as a set.
    with pytest.raises(TTLError, match=r"the validation split \(.*\) holds 3 tokens, fewer than one row of "
                                       r"seq_len=32"):
        prepared(text, tiny_tokenizer, tmp_path / "prepared").setup("fit")
    assert not list((tmp_path / "prepared").glob("*/manifest.json"))


def test_unknown_packing_is_refused(sample_dir, tiny_tokenizer):
    with pytest.raises(TTLError, match="data.packing='gpt'"):
        build(sample_dir, tiny_tokenizer, packing="gpt")


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
    # Every group trains from shards: the raw-text ones prepare them on first use.
    assert dm.settings.seed == 5 and dm.prepare_first == (group != "shards")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, SEQ_LEN) and len(dm.val_dataset.rows) > 0
    record = dm.describe()
    assert record["format"] == "shards"
    # Sources without a validation split hold documents out by content hash, and say so.
    assert (record["holdout"] is not None) == (group in ("pt_corpus", "text_files"))
