"""A run's own git worktree: branch `agent-runner/run-<id>` from the project's HEAD, under WORKSPACE_ROOT.

The operator's checkout is never modified: the agent writes only in its worktree, commits there with hooks
disabled, and the diff is read from git. Every git call has a time limit and a clear error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

GIT_TIMEOUT_SECONDS = 60
AUTHOR = ("Agent Runner", "agent-runner@localhost")


class GitError(Exception):
    pass


def _git_env(*, english: bool = False) -> dict[str, str]:
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
    if english:
        env["LC_ALL"] = "C"
    return env


class GitProcess:
    """A started git command: `output()` waits for it and gives its stdout, or raises GitError."""

    def __init__(
        self,
        *args: str,
        cwd: str | Path,
        timeout: float = GIT_TIMEOUT_SECONDS,
        config: tuple[str, ...] = (),
        english: bool = False,
    ) -> None:
        options = ("core.hooksPath=/dev/null", "commit.gpgsign=false", *config)
        command = ["git", *(part for option in options for part in ("-c", option)), *args]
        self.args, self.cwd, self.timeout = args, cwd, timeout
        self.deadline = time.monotonic() + timeout
        try:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace" if english else None,
                env=_git_env(english=english),
            )
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH") from None

    def output(self) -> str:
        remaining = self.deadline - time.monotonic()
        if self.process.poll() is not None:
            remaining = max(remaining, 1.0)  # it ended while nobody waited: only its output is left to read
        try:
            stdout, stderr = self.process.communicate(timeout=max(0.0, remaining))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise GitError(
                f"git {' '.join(self.args[:2])} timed out after {self.timeout:.0f} s in {self.cwd}"
            ) from None
        if self.process.returncode != 0:
            raise GitError(f"git {' '.join(self.args[:2])} failed in {self.cwd}: {stderr.strip()[:500]}")
        return stdout


def git(
    *args: str,
    cwd: str | Path,
    timeout: float = GIT_TIMEOUT_SECONDS,
    config: tuple[str, ...] = (),
    english: bool = False,
) -> str:
    """`git <args>` in `cwd` with hooks and signing off (and `-c` for each of `config`); its stdout.

    `english`: the output is parsed, so git's messages are not translated, and a name that is not UTF-8 reads
    as U+FFFD rather than failing the call."""
    return GitProcess(*args, cwd=cwd, timeout=timeout, config=config, english=english).output()


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
    created: bool = False  # made just now: its index is its HEAD, nothing staged


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
    return Worktree(path, branch, base, created=True)


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
_SUMMARY_COMMIT = re.compile(r"\[.*? ([0-9a-f]{40}|[0-9a-f]{64})\] ")
_SUMMARY_COUNT = re.compile(r" (\d+) files? changed")
_ADD_LINE = re.compile(r"(add|remove) '(.+)'")
# A name `git log` prints as it is: printable ASCII but `"` and `\` (core.quotePath quotes the rest).
_PLAIN_PATH = re.compile(r"[ !#-\[\]-~]*[ !#-.0-\[\]-~]")


class Staging:
    """What a run's worktree has staged since its last commit, as far as this worker process knows.

    A step's commit is then two git processes, as a person's `git add -A` + `git commit`, and the add is
    mostly done before the step ends: `changed()`, after the agent changed files, starts `git add -A
    --verbose` in the background (while the agent records the change and asks the model for its next
    action), and the step's commit waits for it. The files of a commit are what `git log -1 --name-only`
    lists; when the index was at HEAD when the step began (a new worktree, or the last commit made here, and
    no command run since), they are what the step's adds staged, checked against the count in the commit's
    summary, which also names the commit (core.abbrev=no). Otherwise, or when that listing may differ from
    git log's (a rename, a name git quotes), the commit is `git add -A`, `git commit` and `git log`."""

    def __init__(self, path: str | Path, *, at_head: bool) -> None:
        self.path = path
        self._at_head = at_head
        self._listings: list[str] = []  # what each add of this step staged
        self._adding: GitProcess | None = None

    def changed(self) -> None:
        """The agent changed files, or tried to (a refused write may have made directories): stage them, in
        the background. Called after every change; a command is announced by forget() instead."""
        if not self._at_head:
            return  # the commit stages everything and asks git log for the files
        self._wait()
        self._adding = GitProcess("add", "-A", "--verbose", cwd=self.path, english=True)

    def forget(self) -> None:
        """A command is about to run: it may stage or commit, so the index is no longer known."""
        self._at_head = False
        self._listings.clear()
        self._wait()

    def close(self) -> None:
        """Wait for a background add: a run that leaves its worker leaves no git process behind."""
        self._wait()

    def commit(self, message: str) -> tuple[str, list[str]] | None:
        """Commit everything in the worktree: (the commit, the files it changed), or None when nothing
        changed."""
        self._wait()
        at_head, self._at_head = self._at_head, False  # until this commit is known to have landed
        if at_head and not self._listings:
            self._listings.append(git("add", "-A", "--verbose", cwd=self.path, english=True))
        staged = _staged("\n".join(self._listings)) if at_head else None
        self._listings.clear()
        committed = _commit(self.path, message, staged)
        self._at_head = True  # what was staged is committed
        return committed

    def _wait(self) -> None:
        if self._adding is None:
            return
        adding, self._adding = self._adding, None
        try:
            self._listings.append(adding.output())
        except GitError:  # the commit's own `git add -A` meets the problem again and tells it
            self._at_head = False
            self._listings.clear()


def _commit(path: str | Path, message: str, staged: list[str] | None) -> tuple[str, list[str]] | None:
    """`staged`: what the step's adds staged onto an index at HEAD, or None when that is not known (then
    everything is staged here and the files come from git log)."""
    if staged == []:
        return None  # the index is at HEAD and nothing was staged: nothing to commit
    if staged is None:
        git("add", "-A", cwd=path)
    try:
        summary = git(
            "commit", "--no-verify", "-m", message[:2000] or "Agent Runner step", cwd=path,
            config=(*COMMIT_CONFIG, "core.abbrev=no"), english=True,
        )  # fmt: skip
    except GitError:
        if not git("diff", "--cached", "--name-only", cwd=path).strip():
            return None
        raise
    first, _, rest = summary.partition("\n")
    named, count = _SUMMARY_COMMIT.match(first), _SUMMARY_COUNT.match(rest)
    if named and count and staged is not None and int(count.group(1)) == len(staged):
        return named.group(1), staged
    sha, *changed = [
        line for line in git("log", "-1", "--format=%H", "--name-only", cwd=path).splitlines() if line
    ]
    return sha, changed


def _staged(listing: str) -> list[str] | None:
    """The paths `git add --verbose` staged, sorted as git lists them, or None when they may not be what
    `git log --name-only` lists: a removal beside an addition may be a rename (listed once, by its new
    name), and a name outside plain ASCII is quoted there."""
    added: list[str] = []
    removed: list[str] = []
    for line in listing.splitlines():
        if not line:
            continue
        match = _ADD_LINE.fullmatch(line)
        if match is None or not _PLAIN_PATH.fullmatch(match.group(2)):
            return None
        (added if match.group(1) == "add" else removed).append(match.group(2))
    if added and removed:
        return None
    return sorted(set(added or removed))


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
