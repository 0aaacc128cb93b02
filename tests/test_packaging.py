"""A wheel (non-editable install) carries the configs, the sample corpus and every module."""

import os
import subprocess
import sys
import zipfile

import pytest

from .conftest import OFFLINE_ENV, ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, timeout=300)
    return next(out.glob("ttl-*.whl"))


def test_wheel_contains_configs_sample_corpus_and_all_modules(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ttl/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    expected |= {f"ttl/{p.relative_to(ROOT / 'ttl')}" for p in (ROOT / "ttl").rglob("*.py")}
    expected |= {f"ttl/{p.relative_to(ROOT / 'ttl')}" for p in (ROOT / "ttl" / "data").rglob("*.jsonl")}
    expected |= {f"ttl/{p.relative_to(ROOT / 'ttl')}" for p in (ROOT / "ttl").rglob("*.md.j2")}
    assert "ttl/card/template.md.j2" in expected
    missing = sorted(expected - names)
    assert not missing, missing


def test_installed_wheel_composes_and_plans_from_anywhere(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-m", "ttl.train", "experiment=quickstart", "dry_run=true"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "393,536 parameters" in result.stdout and str(target) in result.stdout
