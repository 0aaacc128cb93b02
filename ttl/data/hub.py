"""Prepared shard sets on the Hugging Face Hub: download (for training) and upload (after prepare).

A shard set on the Hub is a dataset repository holding `manifest.json`, `train/*.parquet`
and `validation/*.parquet`, exactly the local layout; `datasets.load_dataset(repo_id)`
reads it too. Training downloads it into the Hugging Face cache (resumable, shared between
runs) because the seeded shuffle and the O(1) resume read row groups at random.
"""

from __future__ import annotations

from pathlib import Path

from ttl.errors import TTLError
from ttl.rundir import looks_like_hub_id


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
                                      allow_patterns=["manifest.json", "train/*", "validation/*"]))
    except Exception as error:
        raise TTLError(
            f"data.path={path}: not a local directory, and the Hub dataset could not be downloaded "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
            "pass a local copy with data.path=DIR"
        ) from error


def push_shards(directory: Path, repo_id: str, private: bool = True) -> str:
    """Upload a prepared shard set to a Hub dataset repository; returns its URL."""
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(directory),
                          commit_message="ttl.data.prepare: packed token shards")
        return f"https://huggingface.co/datasets/{repo_id}"
    except Exception as error:
        raise TTLError(
            f"push_to_hub={repo_id}: upload failed ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}); the shards are complete in {directory}"
        ) from error
