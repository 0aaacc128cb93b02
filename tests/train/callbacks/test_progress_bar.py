"""StepProgressBar counts optimizer steps against max_steps, with and without accumulation."""

import io

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

from ttl.train.callbacks.progress_bar import StepProgressBar


class Endless(IterableDataset):
    """An endless stream, as ttl's training data is (the bar's total comes from max_steps)."""

    def __iter__(self):
        while True:
            yield torch.randn(4)


class Linear(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class Recording(StepProgressBar):
    """The bar's position and total after every micro-batch."""

    def __init__(self):
        super().__init__(refresh_rate=1)
        self.seen: list[tuple[int, int]] = []

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        bar.fp = io.StringIO()  # keep the test's output clean
        return bar

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.seen.append((self.train_progress_bar.n, self.train_progress_bar.total))


@pytest.mark.parametrize("accumulation", [1, 2, 3])
def test_the_bar_ends_at_max_steps_and_never_passes_it(tmp_path, accumulation):
    bar = Recording()
    trainer = pl.Trainer(max_steps=20, accumulate_grad_batches=accumulation, callbacks=[bar], logger=False,
                         enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(Linear(), DataLoader(Endless(), batch_size=2))
    assert len(bar.seen) == 20 * accumulation  # one entry per micro-batch
    assert bar.seen[-1] == (20, 20)
    assert all(n <= total == 20 for n, total in bar.seen)
    # Half-way through the micro-batches the bar is half-way through the steps, not at its end.
    assert bar.seen[10 * accumulation - 1][0] == 10
