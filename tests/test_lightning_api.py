"""ttl.lightning_api: the private Lightning attributes ttl reads still exist and still mean what
ttl takes them to mean; a Lightning release that moves one fails here, by name."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from ttl.lightning_api import batches_processed, ends_optimizer_step, is_logging_step


class Probe(pl.LightningModule):
    """Records, at each micro-batch, what the adapter answers and what the run then did."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list[tuple[int, bool, bool, int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((batch_idx, ends_optimizer_step(self.trainer), is_logging_step(self.trainer),
                          batches_processed(self.trainer)))
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_adapter_answers_as_the_loop_runs(tmp_path):
    probe = Probe()
    trainer = pl.Trainer(max_steps=6, accumulate_grad_batches=2, log_every_n_steps=3, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.fit(probe, DataLoader(torch.randn(64, 2), batch_size=2))
    ends = [end for _, end, _, _ in probe.seen]
    assert ends == [False, True] * 6  # every second micro-batch ends an optimizer step
    logging_steps = [index // 2 + 1 for index, (_, end, logs, _) in enumerate(probe.seen) if end and logs]
    assert logging_steps == [3, 6]  # log_every_n_steps=3, counted in optimizer steps
    assert [processed for *_, processed in probe.seen] == list(range(12))
    assert batches_processed(trainer) == 12


def test_lightnings_tip_and_pytree_warning_are_silenced(tmp_path):
    import subprocess
    import sys

    # A fresh process, as a run sees them (pytest installs warning filters of its own).
    script = ("import lightning.pytorch as pl, ttl.lightning_api\n"
              "from lightning.pytorch.utilities._pytree import _tree_flatten\n"
              f"pl.Trainer(accelerator='cpu', logger=pl.loggers.CSVLogger({str(tmp_path)!r}))\n"
              "_tree_flatten({'a': [1, 2]})\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    assert "litlogger" not in text and "LeafSpec" not in text
    assert "GPU available" in text  # Lightning's other lines still pass
