"""`ExamplesDataModule`: already-encoded examples (lists of dicts) served in batches by a collator."""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
from torch.utils.data import DataLoader


class ExamplesDataModule(pl.LightningDataModule):
    """Train (shuffled each epoch), validation and optional test examples.

    The examples fit in memory (downstream tasks are thousands of rows); a list is a
    map-style dataset, so Lightning adds a distributed sampler under DDP by itself.
    """

    def __init__(self, train: list[dict], validation: list[dict], test: list[dict] | None,
                 collate: Callable, micro_batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.train, self.validation, self.test = train, validation, test
        self.collate = collate
        self.micro_batch_size = micro_batch_size
        self.num_workers = num_workers

    def _loader(self, examples: list[dict], shuffle: bool) -> DataLoader:
        return DataLoader(examples, batch_size=self.micro_batch_size, shuffle=shuffle,
                          collate_fn=self.collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (the order follows the seed)."""
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in file order."""
        return self._loader(self.validation, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test batches in file order."""
        if self.test is None:
            raise RuntimeError("this task has no test split")
        return self._loader(self.test, shuffle=False)
