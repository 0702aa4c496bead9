"""A run's own git worktree: branch `agent-runner/run-<id>` from the project's HEAD, under WORKSPACE_ROOT.

The operator's checkout is never modified: the agent writes only in its worktree, commits there with hooks
disabled, and the diff is read from git. Every git call has a time limit and a clear error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

GIT_TIMEOUT_SECONDS = 60
AUTHOR = ("Agent Runner", "agent-runner@localhost")


class GitError(Exception):
    pass


def _git_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
            "GIT_CONFIG_NOSYSTEM": "1",
        }
    )
    return env


def git(
    *args: str, cwd: str | Path, timeout: float = GIT_TIMEOUT_SECONDS, config: tuple[str, ...] = ()
) -> str:
    """`git <args>` in `cwd` with hooks and signing off (and `-c` for each of `config`); its stdout."""
    options = ("core.hooksPath=/dev/null", "commit.gpgsign=false", *config)
    command = ["git", *(part for option in options for part in ("-c", option)), *args]
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_git_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args[:2])} timed out after {timeout:.0f} s in {cwd}") from None
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed in {cwd}: {done.stderr.strip()[:500]}")
    return done.stdout


def is_git_repository(path: str | Path) -> bool:
    try:
        return git("rev-parse", "--is-inside-work-tree", cwd=path).strip() == "true"
    except (GitError, NotADirectoryError, FileNotFoundError):
        return False


def has_commits(path: str | Path) -> bool:
    try:
        git("rev-parse", "--verify", "HEAD", cwd=path)
        return True
    except GitError:
        return False


@dataclass
class Worktree:
    path: Path
    branch: str
    base_commit: str


def branch_name(run_id: int) -> str:
    return f"agent-runner/run-{run_id}"


def open_worktree(project_path: str, run_id: int, base_commit: str | None = None) -> Worktree:
    """Create the run's worktree, or reopen it after a resume or a lost worker."""
    branch = branch_name(run_id)
    path = Path(settings.WORKSPACE_ROOT) / f"run-{run_id}"
    if path.exists():
        if not _is_worktree_of(path, project_path, branch):
            raise GitError(
                f"{path} exists but is not the worktree of {branch} in {project_path}; "
                "move it away (it may be left from another database) and resume the run"
            )
        base = base_commit or git("merge-base", "HEAD", branch, cwd=project_path).strip()
        return Worktree(path, branch, base)
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "prune", cwd=project_path)
    branches = git("branch", "--list", branch, cwd=project_path).strip()
    if branches:
        git("worktree", "add", str(path), branch, cwd=project_path)
        base = base_commit or git("merge-base", "HEAD", branch, cwd=project_path).strip()
    else:
        base = base_commit or git("rev-parse", "HEAD", cwd=project_path).strip()
        git("worktree", "add", "-b", branch, str(path), base, cwd=project_path)
    return Worktree(path, branch, base)


def _is_worktree_of(path: Path, project_path: str, branch: str) -> bool:
    try:
        current = git("rev-parse", "--abbrev-ref", "HEAD", cwd=path).strip()
        ours = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=path).strip()
        theirs = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=project_path).strip()
    except (GitError, NotADirectoryError, FileNotFoundError):
        return False
    return current == branch and os.path.realpath(ours) == os.path.realpath(theirs)


def head(path: str | Path) -> str:
    return git("rev-parse", "HEAD", cwd=path).strip()


def reset_to(path: str | Path, commit: str) -> None:
    """Throw away what a lost worker left half-done since the last checkpointed commit."""
    git("reset", "--hard", commit, cwd=path)
    git("clean", "-fdq", cwd=path)


# A step's commit leaves the upkeep of the shared object store to the operator's own git commands (and to
# the merge of an approved run, made in their checkout): otherwise every step's `git commit` starts
# `git maintenance run --auto`, one more process a step (~2.5 ms, a quarter of the commit:
# bench/llm_step.py), and now and then a gc of the operator's repository from a run's worktree.
COMMIT_CONFIG = ("maintenance.auto=false", "gc.auto=0")


def commit_all(path: str | Path, message: str) -> tuple[str, list[str]] | None:
    """Commit everything in the worktree: (the commit, the files it changed), or None when nothing changed.

    Every step commits, so this is three git processes, not four: the commit is tried, and only when it
    fails does the index tell whether there was nothing to commit; the new commit and its files come from
    one `git log`, which lists what `git diff --cached --name-only` listed before the commit."""
    git("add", "-A", cwd=path)
    try:
        git(
            "commit", "-q", "--no-verify", "-m", message[:2000] or "Agent Runner step", cwd=path,
            config=COMMIT_CONFIG,
        )  # fmt: skip
    except GitError:
        if not git("diff", "--cached", "--name-only", cwd=path).strip():
            return None
        raise
    sha, *changed = [
        line for line in git("log", "-1", "--format=%H", "--name-only", cwd=path).splitlines() if line
    ]
    return sha, changed


def commits_since(path: str | Path, base: str) -> list[dict[str, str]]:
    log = git("log", "--reverse", "--format=%H%x00%s", f"{base}..HEAD", cwd=path)
    return [
        dict(zip(("sha", "message"), line.split("\x00", 1), strict=False))
        for line in log.splitlines()
        if line
    ]


def diff(repo: str | Path, base: str, target: str) -> dict[str, object]:
    """Unified diff base..target with per-file added/deleted line counts."""
    stats = []
    for line in git("diff", "--numstat", f"{base}..{target}", cwd=repo).splitlines():
        added, deleted, name = line.split("\t", 2)
        stats.append(
            {
                "path": name,
                "added": int(added) if added.isdigit() else 0,
                "deleted": int(deleted) if deleted.isdigit() else 0,
                "binary": added == "-",
            }
        )
    return {"base": base, "head": target, "files": stats, "diff": git("diff", f"{base}..{target}", cwd=repo)}


def remove_worktree(project_path: str, path: str | Path) -> None:
    try:
        git("worktree", "remove", "--force", str(path), cwd=project_path)
    except GitError:
        shutil.rmtree(path, ignore_errors=True)
        git("worktree", "prune", cwd=project_path)
