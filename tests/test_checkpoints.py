"""ttl.checkpoints: which checkpoints a spec names, in step order, with their recorded figures."""

import json

from ttl.checkpoints import find_checkpoints
from ttl.evaluate import evaluations_table, rows_from_run


def test_checkpoints_are_sorted_by_step_number_and_read_their_state(tmp_path):
    for step in (5, 40, 100):
        export = tmp_path / f"step-{step}"
        export.mkdir()
        (export / "config.json").write_text("{}")
        (export / "trainer_state.json").write_text(json.dumps({
            "step": step, "tokens": step * 10, "val_ppl": 9.5, "wall_time_s": 1.0,
            "energy_kwh": None if step == 5 else step / 1000, "emissions_kg_co2eq": "n/a",
        }))
    (tmp_path / "step-7").mkdir()  # an export without config.json is not a checkpoint
    found = find_checkpoints(str(tmp_path))
    assert [c.step for c in found] == [5, 40, 100]
    assert [c.energy_kwh for c in found] == [None, 0.04, 0.1]
    assert all(c.emissions_kg_co2eq is None and c.tokens == c.step * 10 for c in found)
    assert evaluations_table(rows_from_run(tmp_path)).splitlines()[2] == "| 50 | 9.50 | - | - |"


def test_hub_revisions_take_their_step_from_the_name():
    found = find_checkpoints("nicholasKluge/TeenyTinyLlama-160m", ["step100000", "main"], 8192)
    assert [(c.revision, c.step, c.tokens) for c in found] == [
        ("step100000", 100_000, 819_200_000), ("main", None, None)]
