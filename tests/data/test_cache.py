"""ttl.data.cache: shards prepared on first use, reused after, prepared once across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ttl.data.cache import prepared_shards
from ttl.data.config import DataSettings
from ttl.data.manifest import read_manifest

from ..conftest import OFFLINE_ENV, SHARED_DATA

LAYOUT = SHARED_DATA / "pt-corpus-instruct-layout"


def test_a_set_is_prepared_once_and_a_changed_setting_gets_its_own(sample_dir, tiny_tokenizer, tmp_path,
                                                                    capsys):
    settings = DataSettings(path=str(sample_dir), seq_len=32, prepared_dir=str(tmp_path), prepare_num_proc=1)
    first = prepared_shards(settings, tiny_tokenizer)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert "preparing" in capsys.readouterr().out
    again = prepared_shards(settings, tiny_tokenizer)
    assert again == first and (first / "manifest.json").stat().st_mtime_ns == stamp
    assert "preparing" not in capsys.readouterr().out
    longer = prepared_shards(DataSettings(path=str(sample_dir), seq_len=64, prepared_dir=str(tmp_path),
                                          prepare_num_proc=1), tiny_tokenizer)
    assert longer != first and read_manifest(longer).seq_len == 64 and read_manifest(first).seq_len == 32
    assert first.name.startswith("sample-") and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.name, longer.name, first.name + ".lock", longer.name + ".lock"])


SCRIPT = """
import sys
from transformers import AutoTokenizer
from ttl.data.cache import prepared_shards
from ttl.data.config import DataSettings
settings = DataSettings(path=sys.argv[1], seq_len=32, prepared_dir=sys.argv[2], prepare_num_proc=1)
print("set:", prepared_shards(settings, AutoTokenizer.from_pretrained(sys.argv[3])), flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(not LAYOUT.is_dir(), reason=f"{LAYOUT} is not available on this machine")
def test_a_second_process_waits_for_the_first_and_reuses_its_set(tiny_tokenizer_dir, tmp_path):
    """Two ranks of a torchrun/srun job asking at once: one prepares, the other waits."""
    command = [sys.executable, "-c", SCRIPT, str(LAYOUT), str(tmp_path / "cache"), str(tiny_tokenizer_dir)]
    env = {**os.environ, **OFFLINE_ENV}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    line = first.stdout.readline()
    assert line.startswith("preparing"), line
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    started = time.monotonic()
    out_second, _ = second.communicate(timeout=300)
    out_first = line + first.communicate(timeout=300)[0]
    assert first.returncode == 0 and second.returncode == 0
    # The waiting rank names the holder, so a user can tell which process to look at.
    assert f"waiting for another process (pid {first.pid}) preparing" in out_second, out_second
    assert "prepared file" not in out_second and out_first.count("prepared file") == 4
    paths = [next(x for x in out.splitlines() if x.startswith("set:")) for out in (out_first, out_second)]
    assert paths[0] == paths[1] and time.monotonic() - started > 1
