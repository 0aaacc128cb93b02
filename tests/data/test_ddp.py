"""A real 2-process DDP run (gloo, CPU) on shards: disjoint ranks, exact resume on each rank."""

import pytest
import torch

from ..conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def test_ddp_ranks_are_disjoint_and_each_resumes_exactly(shard_dir, tiny_tokenizer_dir, tmp_path):
    script = ROOT / "tests" / "data" / "ddp_resume_script.py"
    result = run_cli([str(script), str(shard_dir), str(tiny_tokenizer_dir), str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    full = [torch.load(tmp_path / f"full-rank{r}.pt") for r in (0, 1)]
    resumed = [torch.load(tmp_path / f"resumed-rank{r}.pt") for r in (0, 1)]
    rows = [{tuple(x.tolist()) for b in batches for x in b} for batches in full]
    assert len(full[0]) == len(full[1]) == 6 and not rows[0] & rows[1]
    for rank in (0, 1):
        assert len(resumed[rank]) == 3
        assert all(torch.equal(a, b) for a, b in zip(resumed[rank], full[rank][3:], strict=True))
