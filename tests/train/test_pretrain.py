"""ttl.train end to end: the README's quickstart in a subprocess, its outputs, bad inputs."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from ..conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def readme_command(prefix: str) -> list[str]:
    """The README line that starts with `prefix`, as argv after `python`."""
    text = (ROOT / "README.md").read_text()
    line = next(line.strip() for line in text.splitlines() if line.strip().startswith(prefix))
    assert line.startswith("python ")
    return line.split()[1:]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """The README's quickstart command, run once in a fresh directory with a fresh cache."""
    cwd = tmp_path_factory.mktemp("quickstart")
    env = {"TTL_CACHE_DIR": str(cwd / "cache")}
    result = run_cli(readme_command("python -m ttl.train experiment=quickstart"), cwd, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd, env, result


def val_ppl_history(stdout: str) -> list[float]:
    line = next(line for line in stdout.splitlines() if line.startswith("validation perplexity:"))
    return [float(x) for x in re.findall(r"([\d.]+) \(step", line)]


def digest(run_dir: Path) -> dict[str, str]:
    """Content hashes of every file of a run (the process lock file excepted)."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock"
    }


def test_quickstart_trains_a_tokenizer_and_validation_perplexity_falls(quickstart):
    cwd, _, result = quickstart
    assert "training a 2,048-token tokenizer" in result.stdout
    history = val_ppl_history(result.stdout)
    assert len(history) >= 3 and history[-1] < history[0] / 2
    final = re.search(r"final validation perplexity: ([\d.]+)", result.stdout)
    assert final and float(final.group(1)) == history[-1]


def test_quickstart_checkpoints_load_with_from_pretrained_and_pipeline(quickstart):
    cwd, _, _ = quickstart
    run_dir = cwd / "runs" / "quickstart"
    steps = sorted(int(p.name.split("-")[1]) for p in run_dir.glob("step-*"))
    assert steps == [50, 100, 150]
    final = run_dir / "step-150"
    for name in ("config.json", "model.safetensors", "generation_config.json",
                 "tokenizer.json", "tokenizer_config.json", "trainer_state.json"):
        assert (final / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert model.num_parameters() == 393_536 and len(tokenizer) == 2048
    assert model.generation_config.repetition_penalty == 1.2
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    out = generator("A capivara é", max_new_tokens=10, do_sample=False)[0]["generated_text"]
    assert out.startswith("A capivara é") and len(out) > len("A capivara é")
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["step"] == 150 and state["tokens"] == 150 * 4096
    assert state["val_ppl"] == pytest.approx(val_ppl_history(quickstart[2].stdout)[-1], rel=1e-3)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    "overrides, message, code",
    [
        (["model=999m"], "Could not find 'model/999m'", 1),
        (["trainer.max_steps=abc"], "Value 'abc' of type 'str' could not be converted to Integer", 1),
        (["data.path=/nonexistent/corpus"], "data.path=/nonexistent/corpus: no such file", 2),
        (["hardware.micro_batch_size=3"], "does not divide into hardware.micro_batch_size=3", 2),
        (["model.vocab_size=4096", "tokenizer.path=TOKENIZER"],
         "has 2,048 tokens but model.vocab_size=4,096", 2),
    ],
)
def test_bad_inputs_fail_clearly_without_touching_the_earlier_run(quickstart, overrides,
                                                                  message, code):
    cwd, env, _ = quickstart
    run_dir = cwd / "runs" / "quickstart"
    before = digest(run_dir)
    tokenizer_dir = str(run_dir / "step-150")
    args = ["-m", "ttl.train", "experiment=quickstart",
            *[o.replace("TOKENIZER", tokenizer_dir) for o in overrides]]
    result = run_cli(args, cwd, env)
    assert result.returncode == code, result.stderr[-2000:]
    assert message in result.stderr
    if code == 2:
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert digest(run_dir) == before


def test_rerun_of_the_finished_run_reports_it_and_trains_nothing(quickstart):
    """Re-running a finished command (as a re-run sweep does for its finished jobs) reports the
    run from its last export and changes no file of it."""
    cwd, env, _ = quickstart
    run_dir = cwd / "runs" / "quickstart"
    before = digest(run_dir)
    result = run_cli(readme_command("python -m ttl.train experiment=quickstart"), cwd, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already finished at step 150: nothing to train" in result.stdout
    assert "final validation perplexity" in result.stdout
    assert "Restoring states" not in result.stdout + result.stderr
    assert digest(run_dir) == before


def test_rerun_with_more_steps_resumes_the_run(quickstart):
    cwd, env, _ = quickstart
    result = run_cli([*readme_command("python -m ttl.train experiment=quickstart"), "trainer.max_steps=160"],
                     cwd, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Restoring states from the checkpoint path" in result.stdout + result.stderr
    assert (cwd / "runs" / "quickstart" / "configs" / "session-2.yaml").is_file()
    assert (cwd / "runs" / "quickstart" / "step-160").is_dir()


def test_resume_never_refuses_an_existing_run(quickstart):
    cwd, env, _ = quickstart
    result = run_cli(["-m", "ttl.train", "experiment=quickstart", "resume=never"], cwd, env)
    assert result.returncode == 2 and "already holds a run and resume=never" in result.stderr


def test_dry_run_prints_the_160m_plan(tmp_path):
    result = run_cli(["-m", "ttl.train", "model=160m", "trainer=a100", "dry_run=true"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("162,417,408 parameters", "8,192 = 4 micro-batch x 2048 seq x 1 device(s)",
                     "gradient accumulation  1", "458,000", "3,751,936,000", "1,200,996,864",
                     "bf16-mixed"):
        assert expected in out, expected
    assert not (tmp_path / "runs" / "ttl-160m" / "config.yaml").exists()


def test_dry_run_of_tied_embeddings_counts_one_embedding_matrix(tmp_path):
    result = run_cli(["-m", "ttl.train", "model=160m", "trainer=a100", "recipe_switch=tied", "dry_run=true"],
                     tmp_path)
    assert result.returncode == 0, result.stderr
    # 162,417,408 less the output matrix it no longer has: 32,000 x 768.
    assert f"{162_417_408 - 32_000 * 768:,} parameters" in result.stdout
    assert "137,841,408 parameters" in result.stdout

