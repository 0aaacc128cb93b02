"""`push_shards` at the huggingface_hub boundary: the Hub is not reachable here, so an in-memory
dataset repository stands behind `create_autospec(HfApi)` (every call is checked against the real
HfApi signatures). It commits a folder upload one file per commit, deletions riding the first,
and skips files already there unchanged, as `upload_folder`'s multi-commit pipeline does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from unittest.mock import create_autospec

import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects

from ttl.data.hub import push_shards
from ttl.data.manifest import MANIFEST
from ttl.errors import TTLError

REPO = "someone/pt-shards"


class FakeHub:
    """One dataset repository: its files after every commit; the connection drops at commit
    number `drop_at` (counted from 1) when it is set."""

    def __init__(self, files: dict[str, bytes] | None = None, drop_at: int | None = None) -> None:
        self.files: dict[str, bytes] = dict(files or {})
        self.snapshots: list[dict[str, bytes]] = []
        self.messages: list[str] = []
        self.drop_at = drop_at
        self.private: bool | None = None

    def _commit(self, message: str, add: dict[str, bytes], delete: list[str] = ()) -> None:
        if self.drop_at is not None and len(self.snapshots) + 1 == self.drop_at:
            self.drop_at = None
            raise ConnectionError("connection reset by peer")
        for name in delete:
            del self.files[name]
        self.files.update(add)
        self.snapshots.append(dict(self.files))
        self.messages.append(message)

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False, **_) -> None:
        assert repo_id == REPO and repo_type == "dataset" and exist_ok
        if self.private is None:
            self.private = private

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, commit_message=None,
                      allow_patterns=None, ignore_patterns=None, delete_patterns=None, **_) -> None:
        assert repo_id == REPO and repo_type == "dataset"
        root = Path(folder_path)
        local = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        adds = list(filter_repo_objects(sorted(local), allow_patterns=allow_patterns,
                                        ignore_patterns=ignore_patterns))
        deletes = ([name for name in filter_repo_objects(sorted(self.files), allow_patterns=delete_patterns)
                    if name not in adds] if delete_patterns else [])
        todo = [name for name in adds if self.files.get(name) != local[name]]
        for index, name in enumerate(todo or ([None] if deletes else [])):
            self._commit(commit_message if index == 0 else f"{commit_message} (part {index + 1})",
                         {name: local[name]} if name else {}, deletes if index == 0 else [])

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, repo_type=None,
                    commit_message=None, **_) -> None:
        assert repo_id == REPO and repo_type == "dataset"
        self._commit(commit_message, {path_in_repo: Path(path_or_fileobj).read_bytes()})


def api_for(hub: FakeHub):
    """HfApi's real interface (signatures checked on every call) over the in-memory repository."""
    api = create_autospec(HfApi, instance=True)
    for name in ("create_repo", "upload_folder", "upload_file"):
        getattr(api, name).side_effect = getattr(hub, name)
    return api


def local_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def assert_never_an_incomplete_set(hub: FakeHub) -> None:
    """After every commit, a manifest on the Hub names only shards that are there, byte for byte."""
    for files in hub.snapshots:
        if MANIFEST in files:
            manifest = json.loads(files[MANIFEST])
            for split in manifest["splits"].values():
                for shard in split["shards"]:
                    assert len(files[shard["path"]]) == shard["bytes"], shard["path"]


def test_push_uploads_the_shards_then_the_manifest_in_a_commit_of_its_own(shard_dir):
    # The repository holds an older set: its manifest and a shard this set does not have.
    old = {MANIFEST: json.dumps({"splits": {"train": {"shards": [
        {"path": "train/shard-99999-00000.parquet", "bytes": 3}]}}}).encode(),
        "train/shard-99999-00000.parquet": b"old", "README.md": b"# card"}
    hub = FakeHub(old)
    api = api_for(hub)
    url = push_shards(shard_dir, REPO, private=True, api=api)

    assert url == f"https://huggingface.co/datasets/{REPO}"
    assert [call[0] for call in api.method_calls] == ["create_repo", "upload_folder", "upload_file"]
    assert hub.private is True
    folder = api.upload_folder.call_args.kwargs
    assert folder["repo_type"] == "dataset" and MANIFEST in folder["ignore_patterns"]
    manifest_call = api.upload_file.call_args.kwargs
    assert manifest_call["path_in_repo"] == MANIFEST
    assert Path(manifest_call["path_or_fileobj"]) == shard_dir / MANIFEST

    # Exactly this set (and the card, untouched): the old manifest and shard are gone.
    assert hub.files == {**local_files(shard_dir), "README.md": b"# card"}
    shards = [name for name in local_files(shard_dir) if name != MANIFEST]
    assert len(shards) >= 2 and len(hub.snapshots) == len(shards) + 1
    # The old manifest left with the first shard commit; the new one came alone, last.
    assert all(MANIFEST not in files for files in hub.snapshots[:-1])
    assert set(hub.snapshots[-1]) - set(hub.snapshots[-2]) == {MANIFEST}
    assert hub.messages[-1] == "ttl.data.prepare: manifest (shard set complete)"
    assert_never_an_incomplete_set(hub)


def test_a_dropped_connection_uploads_no_manifest_and_a_rerun_resumes(shard_dir):
    hub = FakeHub(drop_at=2)
    api = api_for(hub)
    with pytest.raises(TTLError, match=(
            rf"push_to_hub={REPO}: shard upload failed \(ConnectionError: connection reset by peer\); "
            rf"the shards are complete in {re.escape(str(shard_dir))} "
            r"and the Hub has no manifest of them yet; "
            r"this resumes the upload .*push_shards\(")):
        push_shards(shard_dir, REPO, api=api)
    api.upload_file.assert_not_called()
    assert MANIFEST not in hub.files and len(hub.files) == 1  # one shard got through

    # The command the message gives, with the same (in-memory) Hub: only what is missing goes up.
    push_shards(shard_dir, REPO, api=api)
    assert hub.files == local_files(shard_dir)
    shards = [name for name in local_files(shard_dir) if name != MANIFEST]
    assert len(hub.snapshots) == len(shards) + 1
    assert_never_an_incomplete_set(hub)


def test_a_failed_manifest_upload_says_how_to_finish(shard_dir):
    shards = [name for name in local_files(shard_dir) if name != MANIFEST]
    hub = FakeHub(drop_at=len(shards) + 1)
    with pytest.raises(TTLError, match=(
            rf"every shard is on the Hub but the manifest upload failed \(ConnectionError: .*\); "
            rf"upload it with: hf upload {REPO} {re.escape(str(shard_dir / MANIFEST))} {MANIFEST} "
            r"--repo-type=dataset")):
        push_shards(shard_dir, REPO, api=api_for(hub))
    assert set(hub.files) == set(shards)
