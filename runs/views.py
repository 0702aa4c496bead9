"""Console pages. The full console (dashboard, run page, controls) is built on the same services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from runs.selectors import run_list


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "runs/home.html", {"runs": run_list()[:20]})
