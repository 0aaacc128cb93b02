"""ttl.rundir: the run directory's layout, atomic writes, the saved config and Hub ids."""

import json

import pytest
from omegaconf import OmegaConf

from ttl.errors import TTLError
from ttl.rundir import (
    config_hash,
    load_config,
    looks_like_hub_id,
    read_states,
    save_config,
    saved_config_hash,
    step_dirs,
    write_dir,
    write_json,
)


def test_write_json_replaces_the_file_whole(tmp_path):
    path = write_json(tmp_path / "state.json", {"step": 1, "tokens": "ç"})
    write_json(path, {"step": 2})
    assert json.loads(path.read_text()) == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_dir_leaves_the_old_directory_when_filling_fails(tmp_path):
    write_dir(tmp_path / "step-10", lambda tmp: (tmp.mkdir(), (tmp / "a").write_text("old")))

    def broken(tmp):
        tmp.mkdir()
        (tmp / "a").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dir(tmp_path / "step-10", broken)
    assert (tmp_path / "step-10" / "a").read_text() == "old"


def test_step_dirs_are_the_loadable_exports_in_numeric_order(tmp_path):
    for name in ("step-100", "step-20", "step-3", "step-7", ".tmp-step-5-123", "step-x"):
        (tmp_path / name).mkdir()
    for name in ("step-100", "step-20", "step-3", ".tmp-step-5-123"):
        (tmp_path / name / "config.json").write_text("{}")
        write_json(tmp_path / name / "trainer_state.json", {"step": name})
    assert [p.name for p in step_dirs(tmp_path)] == ["step-3", "step-20", "step-100"]
    assert [s["step"] for s in read_states(tmp_path)] == ["step-3", "step-20", "step-100"]


@pytest.mark.parametrize("value, expected", [("nicholasKluge/Pt-Corpus-Instruct", True), ("runs/x", True),
                                             ("./runs/x", False), ("/data/x", False), ("~/x", False),
                                             ("a/b/c", False), ("a/", False), ("corpus", False)])
def test_hub_ids_are_owner_slash_name(value, expected):
    assert looks_like_hub_id(value) is expected


def test_each_session_saves_its_config_and_the_hash_ignores_resume(tmp_path):
    cfg = OmegaConf.create({"seed": 1, "resume": "auto", "dry_run": False, "model": {"name": "tiny"}})
    save_config(cfg, tmp_path)
    cfg.resume = "never"
    save_config(cfg, tmp_path)
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "configs" / "session-2.yaml").is_file()
    assert saved_config_hash(tmp_path) == config_hash(cfg)
    assert config_hash(cfg) == config_hash(OmegaConf.merge(cfg, {"resume": "x"}))
    assert config_hash(cfg) != config_hash(OmegaConf.merge(cfg, {"seed": 2}))
    (tmp_path / "step-5").mkdir()
    assert load_config(tmp_path / "step-5").model.name == "tiny" and load_config(tmp_path.parent) is None


def test_an_unwritable_run_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TTLError, match="is not writable .*set paths.runs_dir"):
        save_config(OmegaConf.create({}), blocker / "run")
