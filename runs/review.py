"""Review of a run's changes: approve (merge into the base branch), reject (drop the branch), roll back
(revert an approved merge). Git refuses with a clear 409 rather than overwrite work or leave a half merge."""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import transaction

from config.errors import Conflict, InvalidInput
from events.models import EventType
from events.recorder import record_event
from runs import forgejo, lifecycle, workspace
from runs.lifecycle import ReviewAction
from runs.models import Run
from runs.workspace import GitError, git

STRATEGIES = ("ff-only", "merge", "pull_request")


def run_diff(run: Run) -> dict[str, Any]:
    """The run's changes: base_commit..branch from git, or a dry run's proposed diff."""
    proposed = (run.checkpoint or {}).get("proposed_diff")
    if run.options.get("dry_run"):
        diff = proposed or _dry_run_diff(run)
        return {
            "base": None,
            "head": None,
            "files": _files_of(diff),
            "diff": diff,
            "commits": [],
            "dry_run": True,
        }
    if not run.branch or not run.base_commit:
        return {"base": None, "head": None, "files": [], "diff": "", "commits": [], "dry_run": False}
    repo = run.project.local_path
    try:
        changes = workspace.diff(repo, run.base_commit, run.merge_commit or run.branch)
        log = git(
            "log",
            "--reverse",
            "--format=%H%x00%s",
            f"{run.base_commit}..{run.merge_commit or run.branch}",
            cwd=repo,
        )
    except GitError as exc:
        raise Conflict(f"The run's branch cannot be read: {exc}") from None
    commits = [
        dict(zip(("sha", "message"), line.split("\x00", 1), strict=False))
        for line in log.splitlines()
        if line
    ]
    return {**changes, "commits": commits, "dry_run": False}


def files_for_display(diff: str) -> list[dict[str, Any]]:
    """A unified diff (git's or difflib's) split per file, each line with its old and new line numbers."""
    files: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    in_header = False
    old = new = 0
    for line in diff.splitlines():
        if line.startswith("diff --git") or (line.startswith("--- ") and not in_header):
            current = {"path": "", "old_path": "", "added": 0, "deleted": 0, "lines": []}
            files.append(current)
            in_header = True
            if line.startswith("diff --git"):
                continue
        if in_header:
            if line.startswith("--- "):
                current["old_path"] = line[4:].removeprefix("a/")
            elif line.startswith("+++ "):
                path = line[4:].removeprefix("b/")
                current["path"] = current["old_path"] if path == "/dev/null" else path
                in_header = False
            continue
        if line.startswith("@@"):
            ranges = line.split("@@")[1].split()
            old, new = (int(r[1:].split(",")[0]) for r in ranges[:2])
            current["lines"].append(("hunk", "", "", line))
        elif line.startswith("+"):
            current["lines"].append(("add", "", new, line[1:]))
            current["added"] += 1
            new += 1
        elif line.startswith("-"):
            current["lines"].append(("del", old, "", line[1:]))
            current["deleted"] += 1
            old += 1
        elif line.startswith(" "):
            current["lines"].append(("ctx", old, new, line[1:]))
            old, new = old + 1, new + 1
    return files


def _dry_run_diff(run: Run) -> str:
    completed = run.events.filter(type="RUN_COMPLETED").order_by("-seq").first()
    return (completed.payload or {}).get("proposed_diff", "") if completed else ""


def _files_of(diff: str) -> list[dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:].removeprefix("b/")
            current = files.setdefault(name, {"path": name, "added": 0, "deleted": 0, "binary": False})
        elif line.startswith("--- "):
            continue
        elif current is not None and line.startswith("+"):
            current["added"] += 1
        elif current is not None and line.startswith("-"):
            current["deleted"] += 1
    return list(files.values())


def _require_checkout(run: Run) -> str:
    """The project's checkout must be on the run's base branch (the merge happens there)."""
    repo = run.project.local_path
    branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).strip()
    expected = run.base_branch or branch
    if branch != expected:
        raise Conflict(f"{repo} has {branch!r} checked out; check out {expected!r} there, then try again.")
    try:
        git("merge-base", "--is-ancestor", run.base_commit, "HEAD", cwd=repo)
    except GitError:
        raise Conflict(
            f"{expected!r} in {repo} no longer contains the run's base commit {run.base_commit[:12]}."
        ) from None
    return expected


def _require_clean(repo: str, paths: list[str]) -> None:
    if not paths:
        return
    dirty = git("status", "--porcelain", "--", *paths, cwd=repo).strip()
    if dirty:
        listed = ", ".join(line[3:] for line in dirty.splitlines()[:10])
        raise Conflict(
            f"{repo} has uncommitted changes to files this run changes ({listed}); commit or stash them."
        )


def approve(run_id: int, *, user: Any = None, comment: str = "", strategy: str = "ff-only") -> Run:
    if strategy not in STRATEGIES:
        raise InvalidInput(
            f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}.", field="strategy"
        )
    run = lifecycle.check_review(run_id, ReviewAction.APPROVE)
    if strategy == "pull_request":
        return _approve_with_pull_request(run, user=user, comment=comment)
    repo = run.project.local_path
    base = _require_checkout(run)
    changed = [f["path"] for f in workspace.diff(repo, run.base_commit, run.branch)["files"]]
    _require_clean(repo, changed)
    before = workspace.head(repo)
    try:
        if strategy == "ff-only":
            git("merge", "--ff-only", run.branch, cwd=repo)
        else:
            git("merge", "--no-ff", "-m", f"Merge run {run.pk}: {run.name}", run.branch, cwd=repo)
    except GitError as exc:
        _abort(repo, "merge", before)
        hint = " (the base branch moved: approve with strategy 'merge')" if strategy == "ff-only" else ""
        raise Conflict(f"The merge into {base!r} failed and was undone{hint}: {exc}") from None
    merge_commit = workspace.head(repo)
    try:
        return lifecycle.apply_review(
            run_id,
            ReviewAction.APPROVE,
            user=user,
            comment=comment,
            payload={"merge_commit": merge_commit, "strategy": strategy, "base_branch": base},
            changes={"merge_commit": merge_commit},
        )
    finally:
        _drop_worktree(run)


def _approve_with_pull_request(run: Run, *, user: Any, comment: str) -> Run:
    pull_request = forgejo.open_pull_request(run, comment=comment)
    with transaction.atomic():
        approved = lifecycle.apply_review(
            run.pk,
            ReviewAction.APPROVE,
            user=user,
            comment=comment,
            payload={"strategy": "pull_request", "pull_request_url": pull_request["url"]},
            changes={"pull_request_url": pull_request["url"]},
        )
        record_event(
            run.pk, EventType.PR_OPENED, {**pull_request, "branch": run.branch, "base": run.base_branch}
        )
    _drop_worktree(run)
    return approved


def reject(run_id: int, *, user: Any = None, comment: str = "") -> Run:
    run = lifecycle.check_review(run_id, ReviewAction.REJECT)
    _drop_worktree(run)
    if run.branch:
        with contextlib.suppress(GitError):  # already gone
            git("branch", "-D", run.branch, cwd=run.project.local_path)
    return lifecycle.apply_review(
        run_id, ReviewAction.REJECT, user=user, comment=comment, payload={"branch_deleted": run.branch}
    )


def rollback(run_id: int, *, user: Any = None, comment: str = "") -> Run:
    run = lifecycle.check_review(run_id, ReviewAction.ROLLBACK)
    if not run.merge_commit:
        raise Conflict(
            f"Run {run_id} was approved as a pull request ({run.pull_request_url}); revert it in Forgejo."
        )
    repo = run.project.local_path
    _require_checkout(run)
    changed = [f["path"] for f in workspace.diff(repo, run.base_commit, run.merge_commit)["files"]]
    _require_clean(repo, changed)
    before = workspace.head(repo)
    parents = git("rev-list", "--parents", "-n", "1", run.merge_commit, cwd=repo).split()
    try:
        if len(parents) > 2:  # a merge commit: revert it against its first parent
            git("revert", "--no-edit", "-m", "1", run.merge_commit, cwd=repo)
        else:
            git("revert", "--no-commit", f"{run.base_commit}..{run.merge_commit}", cwd=repo)
            git("commit", "-q", "--no-verify", "-m", f"Roll back run {run.pk}: {run.name}", cwd=repo)
    except GitError as exc:
        _abort(repo, "revert", before)
        raise Conflict(
            f"Rolling back run {run.pk} conflicts with later commits and was undone: {exc}"
        ) from None
    revert_commit = workspace.head(repo)
    return lifecycle.apply_review(
        run_id,
        ReviewAction.ROLLBACK,
        user=user,
        comment=comment,
        payload={"revert_commit": revert_commit},
        changes={"revert_commit": revert_commit},
    )


def _abort(repo: str, operation: str, before: str) -> None:
    """Leave nothing half done: abort the operation and return to where the branch was."""
    for command in ((operation, "--abort"), ("reset", "--hard", before)):
        try:
            git(*command, cwd=repo)
        except GitError:
            continue


def _drop_worktree(run: Run) -> None:
    from django.conf import settings

    path = settings.WORKSPACE_ROOT / f"run-{run.pk}"
    if path.exists():
        workspace.remove_worktree(run.project.local_path, path)
