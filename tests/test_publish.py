"""ttl.publish against the huggingface_hub API boundary: the Hub is not reachable here, so an
in-memory Hub stands behind `create_autospec(HfApi)` (every call is checked against the real
HfApi signatures), and what it stores is laid out as the Hugging Face cache so that
`from_pretrained(repo_id, revision="step<N>")` loads it offline, as it would after a download."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from unittest.mock import create_autospec

import httpx
import pytest
import torch
from huggingface_hub import GitCommitInfo, GitRefInfo, GitRefs, HfApi
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from transformers import AutoModelForCausalLM

from ttl.errors import TTLError
from ttl.publish import publish

from .conftest import run_cli

pytestmark = pytest.mark.slow

REPO = "someone/ttl-quickstart"


def _not_found(kind, what: str):
    request = httpx.Request("GET", f"https://huggingface.co/api/models/{what}")
    return kind(f"404: {what}", response=httpx.Response(404, request=request))


class FakeHub:
    """Branches and commits of model repositories, as the Hub keeps them (commits are atomic)."""

    def __init__(self, fail_on_commit: int | None = None) -> None:
        self.repos: dict[str, dict] = {}
        self.commits_made = 0
        self.fail_on_commit = fail_on_commit

    def _repo(self, repo_id: str) -> dict:
        if repo_id not in self.repos:
            raise _not_found(RepositoryNotFoundError, repo_id)
        return self.repos[repo_id]

    def _commit(self, repo: dict, parent: str | None, files: dict[str, bytes], title: str) -> str:
        commit_id = hashlib.sha1(f"{parent}{title}{sorted(files)}{len(repo['commits'])}".encode()).hexdigest()
        repo["commits"][commit_id] = {"parent": parent, "files": files, "title": title}
        return commit_id

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False, **_):
        if repo_id not in self.repos:
            repo = {"private": private, "commits": {}, "branches": {}}
            repo["branches"]["main"] = self._commit(repo, None, {".gitattributes": b"*.safetensors lfs\n"},
                                                    "initial commit")
            self.repos[repo_id] = repo
        return f"https://huggingface.co/{repo_id}"

    def list_repo_refs(self, repo_id, *, repo_type=None, **_):
        repo = self._repo(repo_id)
        branches = [GitRefInfo(name=name, ref=f"refs/heads/{name}", target_commit=commit)
                    for name, commit in repo["branches"].items()]
        return GitRefs(branches=branches, converts=[], tags=[])

    def list_repo_commits(self, repo_id, *, repo_type=None, revision=None, **_):
        repo = self._repo(repo_id)
        commit_id = repo["branches"].get(revision or "main")
        if commit_id is None:
            raise _not_found(RevisionNotFoundError, f"{repo_id}@{revision}")
        history = []
        while commit_id:
            commit = repo["commits"][commit_id]
            history.append(GitCommitInfo(commit_id=commit_id, authors=[], created_at=None,
                                         title=commit["title"], message="", formatted_title=None,
                                         formatted_message=None))
            commit_id = commit["parent"]
        return history

    def create_branch(self, repo_id, *, branch, revision=None, repo_type=None, exist_ok=False, **_):
        repo = self._repo(repo_id)
        if branch in repo["branches"]:
            assert exist_ok
            return
        start = repo["branches"].get(revision, revision) if revision else repo["branches"]["main"]
        assert start in repo["commits"], f"no commit or branch {revision}"
        repo["branches"][branch] = start

    def create_commit(self, repo_id, operations, *, commit_message, revision=None, repo_type=None, **_):
        self.commits_made += 1
        if self.commits_made == self.fail_on_commit:
            raise ConnectionError("connection reset by peer (simulated)")
        repo = self._repo(repo_id)
        branch = revision or "main"
        if branch not in repo["branches"]:
            raise _not_found(RevisionNotFoundError, f"{repo_id}@{branch}")
        parent = repo["branches"][branch]
        files = dict(repo["commits"][parent]["files"])
        for op in operations:
            source = op.path_or_fileobj
            files[op.path_in_repo] = source if isinstance(source, bytes) else Path(source).read_bytes()
        repo["branches"][branch] = self._commit(repo, parent, files, commit_message)

    def files(self, repo_id: str, ref: str) -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo["commits"][repo["branches"][ref]]["files"]

    def as_cache(self, repo_id: str, cache_dir: Path) -> Path:
        """Lay the repository out as huggingface_hub's cache (refs/<branch> -> snapshot)."""
        root = cache_dir / f"models--{repo_id.replace('/', '--')}"
        for ref, commit_id in self.repos[repo_id]["branches"].items():
            (root / "refs").mkdir(parents=True, exist_ok=True)
            (root / "refs" / ref).write_text(commit_id)
            snapshot = root / "snapshots" / commit_id
            snapshot.mkdir(parents=True, exist_ok=True)
            for name, data in self.repos[repo_id]["commits"][commit_id]["files"].items():
                (snapshot / name).write_bytes(data)
        return cache_dir


def api_for(hub: FakeHub):
    """HfApi's real interface (signatures checked on every call) over the in-memory Hub."""
    api = create_autospec(HfApi, instance=True)
    for name in ("create_repo", "list_repo_refs", "list_repo_commits", "create_branch", "create_commit"):
        getattr(api, name).side_effect = getattr(hub, name)
    return api


def test_publish_pushes_a_branch_per_step_and_the_final_model_with_its_card_to_main(
        quickstart_run, tmp_path, capsys):
    hub = FakeHub()
    api = api_for(hub)
    pushes = publish(quickstart_run, REPO, api=api)
    out = capsys.readouterr().out
    # The plan comes first, then the pushes.
    assert out.index("will be created (public)") < out.index("pushed step50")
    assert "4 of 4 refs to push" in out
    assert [p.ref for p in pushes] == ["step50", "step100", "step150", "main"]
    assert set(hub.repos[REPO]["branches"]) == {"main", "step50", "step100", "step150"}

    for step in (50, 100, 150):
        files = hub.files(REPO, f"step{step}")
        export = quickstart_run / f"step-{step}"
        # Exactly the export and its own card (branches start from the first commit, not main).
        exported = {p.name for p in export.iterdir() if p.is_file()}
        assert set(files) == {".gitattributes", "README.md"} | exported
        assert files["model.safetensors"] == (export / "model.safetensors").read_bytes()
        assert json.loads(files["trainer_state.json"])["step"] == step
        assert f'from_pretrained("{REPO}", revision="step{step}")' in files["README.md"].decode()
    main = hub.files(REPO, "main")
    assert main["model.safetensors"] == (quickstart_run / "step-150" / "model.safetensors").read_bytes()
    card = main["README.md"].decode()
    assert f'from_pretrained("{REPO}")' in card and "## Intermediate checkpoints" in card
    assert "`step50`, `step100`, `step150`" in card

    # from_pretrained(repo, revision="step100") loads step 100's weights, main the final ones.
    cache = hub.as_cache(REPO, tmp_path / "hf-cache")
    at_100 = AutoModelForCausalLM.from_pretrained(REPO, revision="step100", cache_dir=cache)
    final = AutoModelForCausalLM.from_pretrained(REPO, cache_dir=cache)
    for model, step in ((at_100, 100), (final, 150)):
        local = AutoModelForCausalLM.from_pretrained(quickstart_run / f"step-{step}")
        for (name, a), b in zip(model.state_dict().items(), local.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert not torch.equal(at_100.lm_head.weight, final.lm_head.weight)


def test_an_interrupted_publish_resumes_and_skips_what_is_already_pushed(quickstart_run, capsys):
    hub = FakeHub(fail_on_commit=3)  # the connection drops while step150 is being pushed
    failure = "step-150 to someone/ttl-quickstart@step150 failed .*connection reset.*run the same command"
    with pytest.raises(TTLError, match=failure):
        publish(quickstart_run, REPO, api=api_for(hub))
    assert hub.files(REPO, "step100")  # pushed before the failure
    capsys.readouterr()
    titles_before = {b: hub.list_repo_commits(REPO, revision=b)[0].commit_id for b in ("step50", "step100")}

    api = api_for(hub)
    publish(quickstart_run, REPO, api=api)
    out = capsys.readouterr().out
    assert "repository someone/ttl-quickstart: exists" in out
    assert out.count("already pushed, skip") == 2 and "2 of 4 refs to push" in out
    pushed = [c.kwargs["revision"] for c in api.create_commit.call_args_list]
    assert pushed == ["step150", "main"]
    # The branches pushed before were not touched again.
    assert {b: hub.list_repo_commits(REPO, revision=b)[0].commit_id for b in titles_before} == titles_before

    # A third run has nothing left to do; dry_run pushes nothing at all.
    api = api_for(hub)
    publish(quickstart_run, REPO, api=api, dry_run=True)
    assert "0 of 4 refs to push" in capsys.readouterr().out
    api.create_commit.assert_not_called()
    api.create_repo.assert_not_called()


def test_the_command_line_names_what_is_wrong(quickstart_run, tmp_path):
    bad_repo = run_cli(["-m", "ttl.publish", f"run_dir={quickstart_run}", "repo_id=no-owner"], tmp_path)
    assert bad_repo.returncode == 2
    assert "repo_id='no-owner': expected <user or organisation>/<name>" in bad_repo.stderr
    empty = run_cli(["-m", "ttl.publish", f"run_dir={tmp_path}", f"repo_id={REPO}", "dry_run=true"], tmp_path)
    assert empty.returncode == 2 and f"run_dir={tmp_path}: no step-<N>/ exports" in empty.stderr
    # The Hub is unreachable here (HF_HUB_OFFLINE=1): one line saying so, no traceback.
    offline = run_cli(["-m", "ttl.publish", f"run_dir={quickstart_run}", f"repo_id={REPO}", "dry_run=true"],
                      tmp_path)
    assert offline.returncode == 2 and "cannot reach the Hugging Face Hub" in offline.stderr
    assert "Traceback" not in offline.stderr
