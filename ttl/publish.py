"""`python -m ttl.publish run_dir=runs/NAME repo_id=user/model`: publish a run the way
TeenyTinyLlama's repositories are published (docs/publishing.md; conf/commands/publish.yaml).

Each branch starts from the repository's first commit (only `.gitattributes`) so that it holds
exactly its export; every ref is written by one commit titled `ttl: step-<N>`, which is how a
re-run knows what is already pushed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING, DictConfig

from ttl.card.render import render_card
from ttl.cli import hydra_command, require, store
from ttl.errors import TTLError, reason
from ttl.rundir import step_dirs, step_of

CARD = "README.md"


@dataclass
class PublishConfig:
    """`python -m ttl.publish`: which run, to which Hub model repository."""

    run_dir: str = MISSING
    repo_id: str = MISSING
    # Create the repository private (when it does not exist yet).
    private: bool = False
    # Print the plan (what is already on the Hub, what would be pushed) and push nothing.
    dry_run: bool = False
    # A Hub token with write access; null = HF_TOKEN or the token `hf auth login` saved.
    token: str | None = None


store(PublishConfig, "publish_schema")


def commit_title(step: int) -> str:
    """The title of the commit that writes the export of `step` (how a resume recognises it)."""
    return f"ttl: step-{step}"


@dataclass
class Push:
    """One ref to write: which export, what it holds, and whether it is already there."""

    ref: str
    step_dir: Path
    files: list[Path]
    done: bool


def remote_state(api, repo_id: str) -> dict[str, str | None] | None:
    """{branch: title of its latest commit} of `repo_id`, or None when it does not exist."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        history = {ref.name: api.list_repo_commits(repo_id, repo_type="model", revision=ref.name)
                   for ref in api.list_repo_refs(repo_id, repo_type="model").branches}
        return {name: commits[0].title if commits else None for name, commits in history.items()}
    except RepositoryNotFoundError:
        return None
    except Exception as error:  # offline mode, no network, a refused token: say which
        raise TTLError(f"cannot reach the Hugging Face Hub to read {repo_id} ({reason(error)})") from error


def plan_pushes(run_dir: Path, remote: dict[str, str | None] | None) -> list[Push]:
    """The refs to write, branches in step order then `main`, each marked done when its latest
    commit is already the one this command would make (`run_dir` has exports: `publish` checks)."""
    remote = remote or {}
    exports = step_dirs(run_dir)
    # Branches named `step<N>`, as TeenyTinyLlama's; every plain file goes, temporaries excluded.
    refs = [(f"step{step_of(d)}", d) for d in exports] + [("main", exports[-1])]
    return [Push(ref, d, sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")),
                 remote.get(ref) == commit_title(step_of(d))) for ref, d in refs]


def describe_plan(repo_id: str, pushes: list[Push], exists: bool, private: bool) -> str:
    """The plan as printed before anything is pushed."""
    visibility = "private" if private else "public"
    lines = [f"repository {repo_id}: " + ("exists" if exists else f"will be created ({visibility})")]
    for push in pushes:
        size = sum(f.stat().st_size for f in push.files)
        what = f"{push.step_dir.name}/ ({len(push.files)} files, {size / 1e6:,.1f} MB)"
        if push.ref == "main":
            what += " with the card"
        lines.append(f"  {push.ref:<14} <- {what}: {'already pushed, skip' if push.done else 'push'}")
    lines.append(f"{sum(not p.done for p in pushes)} of {len(pushes)} refs to push")
    return "\n".join(lines)


def publish(run_dir: str | Path, repo_id: str, *, private: bool = False, dry_run: bool = False,
            token: str | None = None, api=None) -> list[Push]:
    """Push the run's exports to `repo_id` (plan printed first; refs already pushed skipped).
    Returns the plan, each entry marked done once pushed. `api`: a `huggingface_hub.HfApi`."""
    from huggingface_hub import HfApi

    run_dir = Path(run_dir)
    if "/" not in repo_id:
        raise TTLError(f"repo_id={repo_id!r}: expected <user or organisation>/<name>")
    if not step_dirs(run_dir):
        raise TTLError(f"run_dir={run_dir}: no step-<N>/ exports to publish")
    api = api or HfApi(token=token)
    remote = remote_state(api, repo_id)
    pushes = plan_pushes(run_dir, remote)
    print(describe_plan(repo_id, pushes, remote is not None, private), flush=True)
    if dry_run:
        return pushes
    if remote is None:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    # The repository's first commit (.gitattributes only): where every step branch starts.
    root = api.list_repo_commits(repo_id, repo_type="model", revision="main")[-1].commit_id
    branches = [p.ref for p in pushes if p.ref != "main"]
    for push in pushes:
        if push.done:
            continue
        try:
            _push(api, repo_id, run_dir, push, root, branches)
        except TTLError:
            raise
        except Exception as error:
            raise TTLError(f"pushing {push.step_dir} to {repo_id}@{push.ref} failed ({type(error).__name__}: "
                           f"{error}); run the same command again: what is pushed is skipped") from error
        push.done = True
        print(f"pushed {push.ref} <- {push.step_dir}", flush=True)
    print(f"published https://huggingface.co/{repo_id} ({len(branches)} step branches and main)")
    return pushes


def _push(api, repo_id: str, run_dir: Path, push: Push, root: str, branches: list[str]) -> None:
    """One commit writing `push.step_dir` (with its card) to `push.ref`."""
    from huggingface_hub import CommitOperationAdd

    if push.ref == "main":
        # The card names the repository and lists the branches, so its snippets work as shown.
        card = render_card(run_dir, push.step_dir, repo_id, revisions=branches)
    else:
        api.create_branch(repo_id, repo_type="model", branch=push.ref, revision=root, exist_ok=True)
        card = render_card(run_dir, push.step_dir, repo_id, revision=push.ref)
    operations = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f))
                  for f in push.files if f.name != CARD]
    operations.append(CommitOperationAdd(path_in_repo=CARD, path_or_fileobj=card.encode("utf-8")))
    api.create_commit(repo_id, operations, repo_type="model", revision=push.ref,
                      commit_message=commit_title(step_of(push.step_dir)),
                      commit_description=f"{push.step_dir.name}/ of the ttl run {run_dir.name}")


def _publish(cfg: DictConfig) -> None:
    for key in ("run_dir", "repo_id"):
        require(cfg, key, "python -m ttl.publish run_dir=runs/NAME repo_id=user/model")
    publish(cfg.run_dir, cfg.repo_id, private=cfg.private, dry_run=cfg.dry_run, token=cfg.token)


main = hydra_command("ttl.publish", "publish", _publish)

if __name__ == "__main__":
    sys.exit(main())
