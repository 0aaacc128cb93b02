"""Prepared shard sets on the Hugging Face Hub (a dataset repository in the local layout):
download for training (the seeded shuffle and O(1) resume read row groups at random, so not
streamed), upload after prepare (`HfApi.upload_folder`: see docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

from ttl.data.manifest import MANIFEST
from ttl.data.sources import first_line
from ttl.errors import TTLError
from ttl.rundir import looks_like_hub_id

SHARD_PATTERNS = ["train/*", "validation/*"]


def resolve_shard_dir(path: str) -> Path:
    """A local directory of prepared shards: `path` itself, or a Hub dataset id downloaded."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir():
            raise TTLError(f"data.path={path}: prepared shards are a directory, not a file")
        return local
    if not looks_like_hub_id(path):
        raise TTLError(f"data.path={path}: no such file or directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=path, repo_type="dataset",
                                      allow_patterns=[MANIFEST, *SHARD_PATTERNS]))
    except Exception as error:
        raise TTLError(
            f"data.path={path}: not a local directory, and the Hub dataset could not be downloaded "
            f"({first_line(error)}); pass a local copy with data.path=DIR"
        ) from error


def push_shards(directory: Path, repo_id: str, private: bool = True, api=None) -> str:
    """Upload a prepared shard set to a Hub dataset repository (`api`: an `HfApi`); returns its URL.

    The shard upload deletes the old manifest and stale shards; `manifest.json` follows alone, last."""
    directory = Path(directory)
    resume = (f'python -c "from ttl.data.hub import push_shards; '
              f'push_shards({str(directory)!r}, {repo_id!r}, private={private})"')
    try:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(directory),
                          allow_patterns=SHARD_PATTERNS, ignore_patterns=[MANIFEST],
                          delete_patterns=[MANIFEST, *SHARD_PATTERNS],
                          commit_message="ttl.data.prepare: packed token shards")
    except Exception as error:
        raise TTLError(
            f"push_to_hub={repo_id}: shard upload failed ({first_line(error)}); the shards are "
            f"complete in {directory} and the Hub has no manifest of them yet; this resumes the upload "
            f"(files already there are skipped): {resume}"
        ) from error
    try:
        api.upload_file(repo_id=repo_id, repo_type="dataset", path_or_fileobj=str(directory / MANIFEST),
                        path_in_repo=MANIFEST,
                        commit_message="ttl.data.prepare: manifest (shard set complete)")
    except Exception as error:
        raise TTLError(
            f"push_to_hub={repo_id}: every shard is on the Hub but the manifest upload failed "
            f"({first_line(error)}); upload it with: "
            f"hf upload {repo_id} {directory / MANIFEST} {MANIFEST} --repo-type=dataset"
        ) from error
    return f"https://huggingface.co/datasets/{repo_id}"
