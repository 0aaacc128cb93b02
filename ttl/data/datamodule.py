"""`PackedTextDataModule`: raw text -> tokenized, packed blocks -> training and validation batches.

Training streams documents (memory bounded) and packs them on the fly; documents are dealt
round-robin to DDP ranks and dataloader workers, so no worker sees another's documents.
Validation packs the whole validation split once (capped by `max_val_blocks`) so that its
perplexity is computed over the same tokens at every evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ttl.data.packing import Packer, check_packing
from ttl.data.sources import TextSource, iter_documents, resolve_source
from ttl.errors import TTLError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSettings:
    """The `data:` config group, typed."""

    path: str
    seq_len: int
    text_column: str = "text"
    train_split: str = "train"
    val_split: str = "validation"
    val_fraction: float = 0.01
    max_val_blocks: int | None = None
    packing: str = "ttl"
    tokenize_batch_size: int = 256
    num_workers: int = 0


def _dist_rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class PackedTextStream(IterableDataset):
    """Endless-per-epoch stream of packed blocks from raw documents, sharded by rank and worker."""

    def __init__(self, source: TextSource, tokenizer, settings: DataSettings) -> None:
        self.source = source
        self.tokenizer = tokenizer
        self.settings = settings
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called at each epoch start; kept for the shuffled order of later versions."""
        self.epoch = epoch

    def _my_documents(self) -> Iterator[str]:
        rank, world = _dist_rank_and_world()
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        shards, shard = world * workers, rank * workers + worker
        for index, text in enumerate(iter_documents(self.source)):
            if index % shards == shard:
                yield text

    def __iter__(self) -> Iterator[torch.Tensor]:
        packer = Packer(self.settings.seq_len)
        for block in packer.pack(
            self._my_documents(), self.tokenizer, self.settings.packing,
            self.settings.tokenize_batch_size,
        ):
            yield torch.tensor(block, dtype=torch.long)
        if packer.stats.empty_documents:
            log.warning("skipped %d empty documents", packer.stats.empty_documents)


class BlockDataset(Dataset):
    """A fixed set of packed blocks held as one (n, seq_len) tensor."""

    def __init__(self, blocks: torch.Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.blocks[index]


class PackedTextDataModule(pl.LightningDataModule):
    """Training and validation batches of packed token blocks from raw text."""

    def __init__(self, settings: DataSettings, tokenizer, micro_batch_size: int) -> None:
        super().__init__()
        check_packing(settings.packing)
        self.settings = settings
        self.tokenizer = tokenizer
        self.micro_batch_size = micro_batch_size
        self.train_dataset: PackedTextStream | None = None
        self.val_dataset: BlockDataset | None = None

    def _source(self, split: str) -> TextSource:
        s = self.settings
        return resolve_source(
            s.path, split, s.text_column, s.train_split, s.val_split, s.val_fraction
        )

    def setup(self, stage: str | None = None) -> None:
        """Resolve sources (failing early on a missing path or an unreachable Hub id)."""
        if self.train_dataset is not None:
            return
        train_source = self._source(self.settings.train_split)
        # Opening the first document now turns a bad path or an offline Hub id into a clear
        # error before any training starts.
        first = next(iter_documents(train_source), None)
        if first is None:
            raise TTLError(f"data.path={self.settings.path}: the training split has no documents")
        self.train_dataset = PackedTextStream(train_source, self.tokenizer, self.settings)
        self.val_dataset = BlockDataset(self._validation_blocks())

    def _validation_blocks(self) -> torch.Tensor:
        s = self.settings
        source = self._source(s.val_split)
        packer = Packer(s.seq_len)
        blocks: list[list[int]] = []
        for block in packer.pack(iter_documents(source), self.tokenizer, s.packing,
                                 s.tokenize_batch_size):
            blocks.append(block)
            if s.max_val_blocks is not None and len(blocks) >= s.max_val_blocks:
                break
        if not blocks:
            raise TTLError(
                f"data.path={s.path}: the validation split ({source.describe()}) holds "
                f"{packer.stats.tokens} tokens, fewer than one block of data.seq_len={s.seq_len}"
            )
        log.info("validation: %d blocks of %d tokens", len(blocks), s.seq_len)
        return torch.tensor(blocks, dtype=torch.long)

    def train_dataloader(self) -> DataLoader:
        """Micro-batches of packed training blocks."""
        return DataLoader(
            self.train_dataset,
            batch_size=self.micro_batch_size,
            num_workers=self.settings.num_workers,
            pin_memory=torch.cuda.is_available(),
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader:
        """The validation blocks, in order, every one of them (no drop_last)."""
        return DataLoader(self.val_dataset, batch_size=self.micro_batch_size, shuffle=False)


def build_datamodule(data_cfg, tokenizer, micro_batch_size: int) -> pl.LightningDataModule:
    """The DataModule for a `data:` config group (what `ttl.train` calls)."""
    from omegaconf import OmegaConf

    settings = DataSettings(**OmegaConf.to_container(data_cfg, resolve=True))
    return PackedTextDataModule(settings, tokenizer, micro_batch_size)
