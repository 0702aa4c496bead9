"""Run endpoints: one thin view per operation over runs.services and runs.lifecycle."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ERRORS, THROTTLED_ERRORS, WriteRateThrottle, json_object, reject_nulls
from runs import lifecycle, options, review, services
from runs.selectors import run_list
from runs.serializers import (
    ApproveInput,
    DirectiveInput,
    EventPage,
    EventSerializer,
    EventsQuery,
    ReviewInput,
    RunCreateInput,
    RunDiff,
    RunListQuery,
    RunPage,
    RunSerializer,
    SweepResult,
    WorkerStatus,
    event_rows_data,
)

EVENTS_MAX_LIMIT = 500


class RunPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RunListCreateApi(APIView):
    throttle_classes = [WriteRateThrottle]
    throttle_scope = "runs"

    @extend_schema(
        parameters=[RunListQuery],
        responses={200: RunPage, **ERRORS},
        summary="List runs, newest first",
        operation_id="runs_list",
    )
    def get(self, request: Request) -> Response:
        query = RunListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = RunPagination()
        page = paginator.paginate_queryset(run_list(**query.validated_data), request, view=self)
        return paginator.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(
        request=RunCreateInput, responses={201: RunSerializer, **THROTTLED_ERRORS}, summary="Create a run"
    )
    def post(self, request: Request) -> Response:
        body = json_object(request)
        reject_nulls(body, "name", "run_type")
        run = services.create_run(
            project_id=body.get("project_id"),
            goal=body.get("goal"),
            name=body.get("name"),
            run_type=body.get("run_type"),
            run_options=body.get("options"),
            metadata=body.get("metadata"),
            created_by=request.user,
        )
        return Response(RunSerializer(run).data, status=201, headers={"Location": f"/api/runs/{run.pk}/"})


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunSerializer, **ERRORS}, summary="Get a run")
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunSerializer(services.get_run(run_id)).data)


class RunEventsApi(APIView):
    @extend_schema(
        parameters=[EventsQuery], responses={200: EventPage, **ERRORS}, summary="A run's events after a seq"
    )
    def get(self, request: Request, run_id: int) -> Response:
        query = EventsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data["after"]
        limit = min(query.validated_data["limit"], EVENTS_MAX_LIMIT)
        events = services.events_after(run_id, after=after, limit=limit)
        return Response(
            {
                "results": event_rows_data(events),
                "cursor": events[-1][0] if events else after,
            }
        )


def _act(request: Request, run_id: int, action: lifecycle.Action) -> Response:
    lifecycle.apply_action(run_id, action, actor=services.actor_name(request.user))
    return Response(RunSerializer(services.get_run(run_id)).data)


class RunPauseApi(APIView):
    @extend_schema(request=None, responses={200: RunSerializer, **ERRORS}, summary="Pause a run")
    def post(self, request: Request, run_id: int) -> Response:
        return _act(request, run_id, lifecycle.Action.PAUSE)


class RunResumeApi(APIView):
    @extend_schema(request=None, responses={200: RunSerializer, **ERRORS}, summary="Resume a paused run")
    def post(self, request: Request, run_id: int) -> Response:
        return _act(request, run_id, lifecycle.Action.RESUME)


class RunStopApi(APIView):
    @extend_schema(request=None, responses={200: RunSerializer, **ERRORS}, summary="Stop a run for good")
    def post(self, request: Request, run_id: int) -> Response:
        return _act(request, run_id, lifecycle.Action.STOP)


class RunChildrenApi(APIView):
    @extend_schema(responses={200: RunSerializer(many=True), **ERRORS}, summary="A workflow's child runs")
    def get(self, request: Request, run_id: int) -> Response:
        services.get_run(run_id)
        children = run_list().filter(parent_id=run_id).order_by("created_at", "id")
        return Response(RunSerializer(children, many=True).data)


class RunDiffApi(APIView):
    @extend_schema(responses={200: RunDiff, **ERRORS}, summary="The run's changes as a unified diff")
    def get(self, request: Request, run_id: int) -> Response:
        return Response(review.run_diff(services.get_run(run_id)))


def _comment(body: dict[str, Any]) -> str:
    return options.clean_comment(body.get("comment"))


class RunApproveApi(APIView):
    @extend_schema(
        request=ApproveInput, responses={200: RunSerializer, **ERRORS}, summary="Approve: merge the changes"
    )
    def post(self, request: Request, run_id: int) -> Response:
        body = json_object(request)
        strategy = body.get("strategy") or "ff-only"
        review.approve(run_id, user=request.user, comment=_comment(body), strategy=strategy)
        return Response(RunSerializer(services.get_run(run_id)).data)


class RunRejectApi(APIView):
    @extend_schema(
        request=ReviewInput, responses={200: RunSerializer, **ERRORS}, summary="Reject: drop the changes"
    )
    def post(self, request: Request, run_id: int) -> Response:
        body = json_object(request)
        review.reject(run_id, user=request.user, comment=_comment(body))
        return Response(RunSerializer(services.get_run(run_id)).data)


class RunRollbackApi(APIView):
    @extend_schema(
        request=ReviewInput, responses={200: RunSerializer, **ERRORS}, summary="Roll back an approved run"
    )
    def post(self, request: Request, run_id: int) -> Response:
        body = json_object(request)
        review.rollback(run_id, user=request.user, comment=_comment(body))
        return Response(RunSerializer(services.get_run(run_id)).data)


class RunDirectiveApi(APIView):
    throttle_classes = [WriteRateThrottle]
    throttle_scope = "directives"

    @extend_schema(
        request=DirectiveInput,
        responses={201: EventSerializer, **THROTTLED_ERRORS},
        summary="Send a directive",
    )
    def post(self, request: Request, run_id: int) -> Response:
        body = json_object(request)
        event = services.send_directive(
            run_id, text=body.get("text"), actor=services.actor_name(request.user)
        )
        return Response(EventSerializer(event).data, status=201)


class WorkerStatusApi(APIView):
    @extend_schema(responses={200: WorkerStatus, **ERRORS}, summary="Worker clusters and run counts")
    def get(self, request: Request) -> Response:
        return Response(services.worker_status())


class WorkerProcessApi(APIView):
    @extend_schema(request=None, responses={200: SweepResult, **ERRORS}, summary="Sweep now")
    def post(self, request: Request) -> Response:
        result: dict[str, Any] = services.sweep(grace_seconds=0)
        return Response(result)
