"""Console pages for projects: list, register (same path policy as the API), a project's runs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from config.errors import DomainError
from projects import services
from projects.forms import ProjectForm
from projects.models import Project
from runs.selectors import run_list


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.create_project(
                name=form.cleaned_data["name"],
                local_path=form.cleaned_data["local_path"],
                allowed_commands=form.commands(),
            )
        except DomainError as error:
            form.add_domain_error(error)
        else:
            messages.success(request, f"Project {project.name} registered.")
            return redirect("project-detail", project_id=project.pk)
    projects = Project.objects.annotate(run_count=Count("runs")).order_by("name")
    status = 400 if form.errors else 200
    return render(request, "projects/list.html", {"projects": projects, "form": form}, status=status)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    try:
        project = services.get_project(project_id)
    except DomainError:
        raise Http404 from None
    page = Paginator(run_list(project=project.pk), 25).get_page(request.GET.get("page"))
    return render(request, "projects/detail.html", {"project": project, "page": page})
