"""DDP on 2 CPU processes (gloo) trains exactly what 1 process does with the same global batch.

On prepared shards the ranks take interleaved micro-batches of one global order, so 2 ranks x
1 micro-batch see the same rows per step as 1 process x 2 accumulated micro-batches.
"""

import json

import pytest
from safetensors.torch import load_file

from ..conftest import run_cli

pytestmark = pytest.mark.slow

COMMON = ["-m", "ttl.train", "experiment=quickstart", "logger=csv", "callbacks.emissions.enabled=false",
          "trainer.max_steps=6", "hardware.micro_batch_size=16", "model.recipe.checkpoint_every_n_steps=6",
          "model.recipe.eval_every_n_steps=100"]


def test_two_ranks_match_one_process_with_accumulation(tmp_path, shared_cache, sample_dir):
    env = {"TTL_CACHE_DIR": str(shared_cache)}
    tokenizer = shared_cache / "tokenizers" / "sample-bpe-2048"
    prepared = run_cli(["-m", "ttl.data.prepare", f"data_path={sample_dir}", f"tokenizer={tokenizer}",
                        "output_dir=shards", "seq_len=128", "rows_per_group=32"], tmp_path, env)
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    common = [*COMMON, "data=shards", f"data.path={tmp_path / 'shards'}"]
    single = run_cli([*common, "run_name=single"], tmp_path, env)
    assert single.returncode == 0, single.stderr[-2000:]
    assert "16 micro-batch x 128 seq x 1 device(s) x 2 accumulation" in single.stdout
    ddp = run_cli([*common, "run_name=ddp", "trainer.devices=2", "trainer.strategy=ddp"], tmp_path, env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "16 micro-batch x 128 seq x 2 device(s) x 1 accumulation" in ddp.stdout

    runs = tmp_path / "runs"
    a = load_file(runs / "single" / "step-6" / "model.safetensors")
    b = load_file(runs / "ddp" / "step-6" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    ppl = [json.loads((runs / n / "step-6" / "trainer_state.json").read_text())["val_ppl"]
           for n in ("single", "ddp")]
    assert ppl[0] == pytest.approx(ppl[1], rel=1e-5)
    # Only rank 0 writes the run's files.
    assert not list((runs / "ddp").glob("configs/session-*.yaml"))
