"""Schedules and agent profiles over the API: thin views over runs.schedules and the models."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ERRORS, json_object, reject_nulls
from config.errors import InvalidInput, NotFound
from runs import schedules, services
from runs.models import AgentProfile, RunType, Schedule


class ScheduleSerializer(serializers.ModelSerializer):
    project_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "project_id",
            "goal",
            "run_type",
            "options",
            "run_metadata",
            "cron",
            "enabled",
            "last_run_at",
            "next_run_at",
            "created_at",
        ]
        read_only_fields = fields


class ScheduleInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    project_id = serializers.IntegerField()
    goal = serializers.CharField(max_length=10_000)
    run_type = serializers.ChoiceField(choices=RunType.choices, required=False)
    options = serializers.JSONField(required=False)
    run_metadata = serializers.JSONField(required=False)
    cron = serializers.CharField(max_length=100, help_text='e.g. "0 2 * * *" (TIME_ZONE)')
    enabled = serializers.BooleanField(required=False)


class AgentProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentProfile
        fields = [
            "name",
            "description",
            "system_prompt",
            "allowed_tools",
            "model",
            "max_steps",
            "max_tokens",
            "reports_verdict",
        ]
        read_only_fields = fields


FIELDS = ("name", "project_id", "goal", "run_type", "options", "run_metadata", "cron", "enabled")


def _apply(schedule: Schedule, body: dict, *, user: object = None) -> Schedule:
    reject_nulls(body, *FIELDS)
    for field in FIELDS:
        if field in body:
            setattr(schedule, field, body[field])
    if not isinstance(schedule.name, str) or not schedule.name.strip() or len(schedule.name) > 200:
        raise InvalidInput("A schedule needs a name (at most 200 characters).", field="name")
    if not isinstance(schedule.enabled, bool):
        raise InvalidInput("enabled must be true or false.", field="enabled")
    project_id = schedule.project_id
    if isinstance(project_id, bool) or not isinstance(project_id, int) or not 0 < project_id < 2**63:
        raise InvalidInput("project_id must be the integer id of a project.", field="project_id")
    services.check_run_template(schedule.project_id, schedule.run_type, schedule.options)
    if Schedule.objects.filter(name=schedule.name).exclude(pk=schedule.pk).exists():
        raise InvalidInput(f"A schedule named {schedule.name!r} already exists.", field="name")
    if user is not None and getattr(user, "is_authenticated", False) and not schedule.created_by_id:
        schedule.created_by = user
    return schedules.save_schedule(schedule)


def _get(schedule_id: int) -> Schedule:
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"Schedule {schedule_id} does not exist.")
    return schedule


class ScheduleListCreateApi(APIView):
    @extend_schema(responses={200: ScheduleSerializer(many=True), **ERRORS}, summary="List schedules")
    def get(self, request: Request) -> Response:
        return Response(ScheduleSerializer(Schedule.objects.all(), many=True).data)

    @extend_schema(
        request=ScheduleInput, responses={201: ScheduleSerializer, **ERRORS}, summary="Create a schedule"
    )
    def post(self, request: Request) -> Response:
        schedule = _apply(Schedule(run_type=RunType.AGENT), json_object(request), user=request.user)
        return Response(
            ScheduleSerializer(schedule).data,
            status=201,
            headers={"Location": f"/api/schedules/{schedule.pk}/"},
        )


class ScheduleDetailApi(APIView):
    @extend_schema(responses={200: ScheduleSerializer, **ERRORS}, summary="Get a schedule")
    def get(self, request: Request, schedule_id: int) -> Response:
        return Response(ScheduleSerializer(_get(schedule_id)).data)

    @extend_schema(
        request=ScheduleInput(partial=True),
        responses={200: ScheduleSerializer, **ERRORS},
        summary="Change a schedule",
    )
    def patch(self, request: Request, schedule_id: int) -> Response:
        return Response(ScheduleSerializer(_apply(_get(schedule_id), json_object(request))).data)

    @extend_schema(responses={204: None, **ERRORS}, summary="Delete a schedule (its runs stay)")
    def delete(self, request: Request, schedule_id: int) -> Response:
        _get(schedule_id).delete()
        return Response(status=204)


class AgentProfileListApi(APIView):
    @extend_schema(
        responses={200: AgentProfileSerializer(many=True), **ERRORS}, summary="List agent profiles"
    )
    def get(self, request: Request) -> Response:
        return Response(AgentProfileSerializer(AgentProfile.objects.all(), many=True).data)
