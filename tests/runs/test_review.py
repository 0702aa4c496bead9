"""Approve, reject and roll back a run's changes in real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from config.errors import Conflict, InvalidTransition
from events.models import EventType
from runs import review
from runs.execution import execute_run
from runs.models import ReviewState, Run, RunStatus

T = EventType


def git(path, *args: str) -> str:
    command = ["git", "-C", str(path), "-c", "user.name=Op", "-c", "user.email=op@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.mark.django_db
def test_it_requests_review_when_files_changed(finished_run):
    run = finished_run()
    assert (run.status, run.review_state) == (RunStatus.COMPLETED, ReviewState.PENDING)
    types = list(run.events.order_by("seq").values_list("type", flat=True))
    assert types[-2:] == [T.RUN_COMPLETED, T.REVIEW_REQUESTED]
    diff = review.run_diff(run)
    assert [f["path"] for f in diff["files"]] == ["hello.py"]
    assert diff["files"][0]["added"] == 2 and "+def hello():" in diff["diff"]
    assert [c["message"] for c in diff["commits"]] == ["Write hello.py"]


@pytest.mark.django_db
def test_it_does_not_request_review_without_changes(make_run):
    run = make_run(options={"max_steps": 1})
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.review_state == ReviewState.NONE
    with pytest.raises(InvalidTransition):
        review.approve(run.pk)


@pytest.mark.django_db
@pytest.mark.parametrize("strategy", ["ff-only", "merge"])
def test_it_approves_by_merging_into_the_base_branch(finished_run, alice, strategy):
    run = finished_run()
    repo = Path(run.project.local_path)
    approved = review.approve(run.pk, user=alice, comment="lgtm", strategy=strategy)
    assert approved.review_state == ReviewState.APPROVED
    assert approved.reviewed_by == alice and approved.review_comment == "lgtm" and approved.reviewed_at
    assert (repo / "hello.py").read_text() == "def hello():\n    return 'hi'\n"
    assert git(repo, "rev-parse", "HEAD").strip() == approved.merge_commit
    assert git(repo, "branch", "--list", run.branch).strip(), "the branch is kept"
    assert not (Path(run.project.local_path).parent / "workspaces").exists()
    event = approved.events.get(type=T.CHANGES_APPROVED)
    assert event.payload["merge_commit"] == approved.merge_commit and event.payload["actor"] == "alice"
    with pytest.raises(InvalidTransition):
        review.approve(run.pk, user=alice)


@pytest.mark.django_db
def test_it_refuses_to_approve_over_uncommitted_work(finished_run):
    run = finished_run()
    repo = Path(run.project.local_path)
    (repo / "hello.py").write_text("my own work\n")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(Conflict, match="uncommitted changes"):
        review.approve(run.pk)
    assert (repo / "hello.py").read_text() == "my own work\n"
    assert git(repo, "rev-parse", "HEAD") == head
    assert Run.objects.get(pk=run.pk).review_state == ReviewState.PENDING


@pytest.mark.django_db
def test_it_refuses_a_conflicting_merge_and_leaves_nothing_half_merged(finished_run):
    run = finished_run()
    repo = Path(run.project.local_path)
    (repo / "hello.py").write_text("conflicting\n")
    git(repo, "add", "hello.py")
    git(repo, "commit", "-qm", "operator wrote hello.py too")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(Conflict, match="merge"):
        review.approve(run.pk, strategy="merge")
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "hello.py").read_text() == "conflicting\n"
    assert Run.objects.get(pk=run.pk).review_state == ReviewState.PENDING


@pytest.mark.django_db
def test_it_refuses_when_another_branch_is_checked_out(finished_run):
    run = finished_run()
    repo = Path(run.project.local_path)
    git(repo, "checkout", "-qb", "elsewhere")
    with pytest.raises(Conflict, match="checked out"):
        review.approve(run.pk)


@pytest.mark.django_db
def test_it_rejects_by_dropping_the_branch(finished_run, alice):
    run = finished_run()
    repo = Path(run.project.local_path)
    head = git(repo, "rev-parse", "HEAD")
    rejected = review.reject(run.pk, user=alice, comment="not this way")
    assert rejected.review_state == ReviewState.REJECTED
    assert git(repo, "branch", "--list", run.branch).strip() == ""
    assert git(repo, "rev-parse", "HEAD") == head and not (repo / "hello.py").exists()
    assert rejected.events.get(type=T.CHANGES_REJECTED).payload["comment"] == "not this way"


@pytest.mark.django_db
@pytest.mark.parametrize("strategy", ["ff-only", "merge"])
def test_it_rolls_back_an_approved_run(finished_run, alice, strategy):
    run = finished_run()
    repo = Path(run.project.local_path)
    before = {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}
    review.approve(run.pk, user=alice, strategy=strategy)
    rolled = review.rollback(run.pk, user=alice)
    assert rolled.review_state == ReviewState.ROLLED_BACK
    assert {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()} == before
    assert git(repo, "rev-parse", "HEAD").strip() == rolled.revert_commit
    assert rolled.events.get(type=T.CHANGES_ROLLED_BACK).payload["revert_commit"] == rolled.revert_commit


@pytest.mark.django_db
def test_it_refuses_a_rollback_that_conflicts_with_later_commits(finished_run):
    run = finished_run()
    repo = Path(run.project.local_path)
    review.approve(run.pk)
    (repo / "hello.py").write_text("def hello():\n    return 'hello, later'\n")
    git(repo, "commit", "-qam", "later change to the same lines")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(Conflict, match="later commits"):
        review.rollback(run.pk)
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""
    assert Run.objects.get(pk=run.pk).review_state == ReviewState.APPROVED
