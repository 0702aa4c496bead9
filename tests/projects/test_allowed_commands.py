"""A project's allowed commands: set and changed through the API, validated."""

from __future__ import annotations

import pytest

from projects.models import Project


@pytest.mark.django_db
def test_it_sets_and_changes_allowed_commands(api, make_repo):
    path = make_repo("tools")
    created = api.post(
        "/api/projects/", {"name": "tools", "local_path": str(path), "allowed_commands": ["pytest -q", " ruff check "]},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["allowed_commands"] == ["pytest -q", "ruff check"]
    project_id = created.json()["id"]
    changed = api.patch(f"/api/projects/{project_id}/", {"allowed_commands": []}, format="json")
    assert changed.status_code == 200 and changed.json()["allowed_commands"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("commands", ["pytest", [1], ["echo 'unterminated"], ["x" * 201]])
def test_it_refuses_bad_allowed_commands(api, project, commands):
    response = api.patch(f"/api/projects/{project.pk}/", {"allowed_commands": commands}, format="json")
    assert response.status_code == 400 and "allowed_commands" in response.json()
    assert Project.objects.get(pk=project.pk).allowed_commands == []
