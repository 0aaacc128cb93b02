"""ttl.data.datamodule: sharding across workers, validation blocks, clear failures."""

import pytest
import torch

from ttl.data.datamodule import DataSettings, PackedTextDataModule
from ttl.errors import TTLError


def datamodule(path, tokenizer, **overrides):
    settings = DataSettings(path=str(path), seq_len=32, tokenize_batch_size=8, **overrides)
    return PackedTextDataModule(settings, tokenizer, micro_batch_size=4)


def rows(loader):
    return [tuple(r.tolist()) for batch in loader for r in batch]


def test_two_workers_see_disjoint_blocks_covering_the_single_worker_stream(
        sample_dir, tiny_tokenizer):
    one = datamodule(sample_dir, tiny_tokenizer)
    one.setup("fit")
    two = datamodule(sample_dir, tiny_tokenizer, num_workers=2)
    two.setup("fit")
    single, double = rows(one.train_dataloader()), rows(two.train_dataloader())
    assert len(set(double)) == len(double)  # nothing seen twice
    # Each worker packs its own documents, so block boundaries differ; token totals agree to
    # within the dropped remainders (less than one block per worker and per batch).
    assert abs(len(double) - len(single)) <= 2 * 4


def test_validation_covers_the_split_in_order(sample_dir, tiny_tokenizer):
    dm = datamodule(sample_dir, tiny_tokenizer)
    dm.setup("fit")
    blocks = dm.val_dataset.blocks
    assert blocks.dtype == torch.long and blocks.shape[1] == 32 and blocks.shape[0] > 10
    again = datamodule(sample_dir, tiny_tokenizer)
    again.setup("fit")
    assert torch.equal(again.val_dataset.blocks, blocks)


def test_validation_smaller_than_a_block_is_refused(tmp_path, tiny_tokenizer):
    (tmp_path / "train.txt").write_text("uma linha de treino bem comprida\n" * 50)
    (tmp_path / "validation.txt").write_text("curta\n")
    with pytest.raises(TTLError, match="fewer than one block of data.seq_len=32"):
        datamodule(tmp_path, tiny_tokenizer).setup("fit")


def test_unknown_packing_is_refused(sample_dir, tiny_tokenizer):
    with pytest.raises(TTLError, match="data.packing='gpt'"):
        datamodule(sample_dir, tiny_tokenizer, packing="gpt")
