from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from config.api import both_slashes
from config.auth_api import TokenApi
from config.converters import IdConverter
from config.health import health
from projects.api import ProjectDetailApi, ProjectListCreateApi
from runs import api as runs_api
from runs import schedule_api

register_converter(IdConverter, "id")

api_patterns = [
    *both_slashes("auth/token", TokenApi.as_view(), "api-token"),
    *both_slashes("projects", ProjectListCreateApi.as_view(), "api-projects"),
    *both_slashes("projects/<id:project_id>", ProjectDetailApi.as_view(), "api-project"),
    *both_slashes("runs", runs_api.RunListCreateApi.as_view(), "api-runs"),
    *both_slashes("runs/<id:run_id>", runs_api.RunDetailApi.as_view(), "api-run"),
    *both_slashes("runs/<id:run_id>/events", runs_api.RunEventsApi.as_view(), "api-run-events"),
    *both_slashes("runs/<id:run_id>/pause", runs_api.RunPauseApi.as_view(), "api-run-pause"),
    *both_slashes("runs/<id:run_id>/resume", runs_api.RunResumeApi.as_view(), "api-run-resume"),
    *both_slashes("runs/<id:run_id>/stop", runs_api.RunStopApi.as_view(), "api-run-stop"),
    *both_slashes("runs/<id:run_id>/directive", runs_api.RunDirectiveApi.as_view(), "api-run-directive"),
    *both_slashes("runs/<id:run_id>/diff", runs_api.RunDiffApi.as_view(), "api-run-diff"),
    *both_slashes("runs/<id:run_id>/children", runs_api.RunChildrenApi.as_view(), "api-run-children"),
    *both_slashes("runs/<id:run_id>/approve", runs_api.RunApproveApi.as_view(), "api-run-approve"),
    *both_slashes("runs/<id:run_id>/reject", runs_api.RunRejectApi.as_view(), "api-run-reject"),
    *both_slashes("runs/<id:run_id>/rollback", runs_api.RunRollbackApi.as_view(), "api-run-rollback"),
    *both_slashes("schedules", schedule_api.ScheduleListCreateApi.as_view(), "api-schedules"),
    *both_slashes("schedules/<id:schedule_id>", schedule_api.ScheduleDetailApi.as_view(), "api-schedule"),
    *both_slashes("agent-profiles", schedule_api.AgentProfileListApi.as_view(), "api-agent-profiles"),
    *both_slashes("worker/status", runs_api.WorkerStatusApi.as_view(), "api-worker-status"),
    *both_slashes("worker/process", runs_api.WorkerProcessApi.as_view(), "api-worker-process"),
    *both_slashes("schema", SpectacularAPIView.as_view(), "api-schema"),
]

urlpatterns = [
    path("health", health, name="health"),
    path("health/", health),
    path("api/", include(api_patterns)),
    path("api-auth/", include("rest_framework.urls")),
    path("docs", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="docs"),
    path("docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))),
    path("redoc", login_required(SpectacularRedocView.as_view(url_name="api-schema")), name="redoc"),
    path("redoc/", login_required(SpectacularRedocView.as_view(url_name="api-schema"))),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/", include("projects.urls")),
    path("", include("runs.urls")),
]

handler404 = "config.api.api_not_found"
handler500 = "config.api.api_server_error"
