"""ttl.card.__main__: `python -m ttl.card`, and its refresh of a published card's model-index
(`push_metadata_to=user/model`), run in process."""

from __future__ import annotations

from huggingface_hub import ModelCard

from ttl.card import metadata
from ttl.card.__main__ import main


def test_writes_the_latest_card_by_default(card_run, capsys):
    assert main([f"run_dir={card_run}"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {card_run / 'step-30' / 'README.md'}"
    assert "# tiny-pt (step 30)" in (card_run / "step-30" / "README.md").read_text()


def test_push_settings_that_cannot_work_are_refused_before_anything_is_written(card_run, capsys):
    assert main([f"run_dir={card_run}", "dry_run=true"]) == 2
    assert "dry_run=true previews a push: give push_metadata_to=user/model too" in capsys.readouterr().err
    assert main([f"run_dir={card_run}", "push_metadata_to=no-owner"]) == 2
    assert "push_metadata_to='no-owner': expected <user or organisation>/<name>" in capsys.readouterr().err
    assert main([f"run_dir={card_run}", "push_metadata_to=user/tiny-pt", "step=20"]) == 2
    err = capsys.readouterr().err
    assert "step=20: push_metadata_to refreshes the card on main" in err
    assert "(step-30; steps: 10, 20, 30)" in err
    assert not any(card_run.glob("step-*/README.md"))


def test_push_metadata_to_pushes_the_model_index_of_the_card_it_wrote(card_run, tmp_path, monkeypatch,
                                                                       capsys):
    calls = []

    def push(repo_id, data, *, token=None, dry_run=False):
        calls.append((repo_id, data, token, dry_run))
        return "pushed"

    monkeypatch.setattr(metadata, "push_model_index", push)
    output = tmp_path / "card.md"
    assert main([f"run_dir={card_run}", "push_metadata_to=user/tiny-pt", "token=hf_x", "dry_run=true",
                 f"output={output}"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {output}", "pushed"]
    [(repo_id, data, token, dry_run)] = calls
    assert (repo_id, token, dry_run) == ("user/tiny-pt", "hf_x", True)
    written = ModelCard.load(output)
    assert data.eval_results == written.data.eval_results and len(data.eval_results) == 6
    # The snippets name the repository pushed to, and so does the model-index.
    assert 'from_pretrained("user/tiny-pt")' in written.text and data.model_name == "tiny-pt"


def test_without_the_hub_the_push_fails_with_one_line_after_writing_the_card(card_run, capsys):
    # The tests run with HF_HUB_OFFLINE=1: huggingface_hub's real client refuses to connect.
    assert main([f"run_dir={card_run}", "push_metadata_to=user/tiny-pt"]) == 2
    captured = capsys.readouterr()
    assert captured.out.strip() == f"wrote {card_run / 'step-30' / 'README.md'}"
    assert captured.err.startswith("ttl.card: error: cannot reach the Hugging Face Hub to read user/tiny-pt")
