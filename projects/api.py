"""Project endpoints: thin views over projects.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ERRORS, json_object, reject_nulls
from projects import services
from projects.models import Project
from projects.serializers import ProjectCreateInput, ProjectSerializer, ProjectUpdateInput


class ProjectListCreateApi(APIView):
    @extend_schema(responses={200: ProjectSerializer(many=True), **ERRORS}, summary="List projects")
    def get(self, request: Request) -> Response:
        return Response(ProjectSerializer(Project.objects.all(), many=True).data)

    @extend_schema(
        request=ProjectCreateInput, responses={201: ProjectSerializer, **ERRORS}, summary="Register a project"
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        project = services.create_project(
            name=body.get("name"),
            local_path=body.get("local_path"),
            allowed_commands=body.get("allowed_commands"),
        )
        return Response(
            ProjectSerializer(project).data, status=201, headers={"Location": f"/api/projects/{project.pk}/"}
        )


class ProjectDetailApi(APIView):
    @extend_schema(responses={200: ProjectSerializer, **ERRORS}, summary="Get a project")
    def get(self, request: Request, project_id: int) -> Response:
        return Response(ProjectSerializer(services.get_project(project_id)).data)

    @extend_schema(
        request=ProjectUpdateInput, responses={200: ProjectSerializer, **ERRORS}, summary="Change a project"
    )
    def patch(self, request: Request, project_id: int) -> Response:
        body = json_object(request)
        reject_nulls(body, "name", "local_path", "allowed_commands")
        project = services.update_project(
            services.get_project(project_id),
            name=body.get("name"),
            local_path=body.get("local_path"),
            allowed_commands=body.get("allowed_commands"),
        )
        return Response(ProjectSerializer(project).data)

    @extend_schema(responses={204: None, **ERRORS}, summary="Delete a project that has no runs")
    def delete(self, request: Request, project_id: int) -> Response:
        services.delete_project(services.get_project(project_id))
        return Response(status=204)
