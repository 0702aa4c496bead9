"""Projects over the API: create, read, change, delete, and the path policy."""

from __future__ import annotations

import os

import pytest

from projects.models import Project
from runs.models import Run


@pytest.mark.django_db
def test_it_creates_and_lists_projects(api, make_repo):
    path = make_repo("alpha")
    response = api.post("/api/projects/", {"name": "alpha", "local_path": str(path)}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "alpha" and body["local_path"] == os.path.realpath(path)
    assert response["Location"] == f"/api/projects/{body['id']}/"
    listed = api.get("/api/projects").json()
    assert [p["name"] for p in listed] == ["alpha"]
    assert api.get(f"/api/projects/{body['id']}").json() == body


@pytest.mark.django_db
def test_it_changes_and_deletes_a_project(api, project, make_repo):
    other = make_repo("other")
    changed = api.patch(
        f"/api/projects/{project.pk}/", {"name": "renamed", "local_path": str(other)}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["name"] == "renamed" and changed.json()["local_path"] == str(other)
    assert api.delete(f"/api/projects/{project.pk}/").status_code == 204
    assert not Project.objects.exists()
    assert api.get(f"/api/projects/{project.pk}/").status_code == 404


@pytest.mark.django_db
def test_it_keeps_a_project_that_has_runs(api, make_run, project):
    make_run()
    response = api.delete(f"/api/projects/{project.pk}/")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert "1 run" in response.json()["detail"]
    assert Project.objects.filter(pk=project.pk).exists() and Run.objects.count() == 1


def bad_paths(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "file.txt").write_text("x")
    return {
        "relative": ("projects/repo", "absolute"),
        "missing": (str(root / "nope"), "does not exist"),
        "file": (str(root / "file.txt"), "not a directory"),
        "outside": (str(outside), "outside the project roots"),
        "root": ("/", "system directory"),
        "etc": ("/etc", "system directory"),
        "ssh": (os.path.expanduser("~/.ssh"), ""),
        "symlink": (str(root / "escape"), "symlink"),
        "nul": (str(root) + "/a\x00b", "NUL"),
        "blank": ("", "required"),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", ["relative", "missing", "file", "outside", "root", "etc", "ssh", "symlink", "nul", "blank"]
)
def test_it_refuses_paths_it_must_not_use(api, project_root, tmp_path, case):
    path, message = bad_paths(project_root, tmp_path)[case]
    response = api.post("/api/projects/", {"name": f"p-{case}", "local_path": path}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "local_path" in body
    assert message in body["detail"]
    assert not Project.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"local_path": "/x"}, "name"),
    ({"name": "  ", "local_path": "/x"}, "name"),
    ({"name": "n" * 201, "local_path": "/x"}, "name"),
])  # fmt: skip
def test_it_refuses_bad_names(api, body, field):
    response = api.post("/api/projects/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_duplicate_name_without_changing_anything(api, project, make_repo):
    other = make_repo("second")
    response = api.post("/api/projects/", {"name": "demo", "local_path": str(other)}, format="json")
    assert response.status_code == 400 and "already exists" in response.json()["name"][0]
    second = Project.objects.create(name="second", local_path=str(other))
    renamed = api.patch(f"/api/projects/{second.pk}/", {"name": "demo"}, format="json")
    assert renamed.status_code == 400
    assert Project.objects.get(pk=second.pk).name == "second"


@pytest.mark.django_db
def test_it_refuses_a_body_that_is_not_an_object(api):
    assert api.post("/api/projects/", [1, 2], format="json").status_code == 400
    malformed = api.post("/api/projects/", "{nope", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["code"] == "parse_error"
