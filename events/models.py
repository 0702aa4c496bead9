from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    RUN_CREATED = "RUN_CREATED"
    RUN_STARTED = "RUN_STARTED"
    AGENT_THINKING = "AGENT_THINKING"
    PLAN_GENERATED = "PLAN_GENERATED"
    EXECUTING = "EXECUTING"
    STEP_COMPLETED = "STEP_COMPLETED"
    DIRECTIVE_RECEIVED = "DIRECTIVE_RECEIVED"
    DIRECTIVE_APPLIED = "DIRECTIVE_APPLIED"
    RUN_PAUSED = "RUN_PAUSED"
    RUN_RESUMED = "RUN_RESUMED"
    RUN_STOPPED = "RUN_STOPPED"
    RUN_COMPLETED = "RUN_COMPLETED"
    RUN_FAILED = "RUN_FAILED"
    WORKER_LOST = "WORKER_LOST"
    LLM_CALL = "LLM_CALL"
    TOOL_CALL = "TOOL_CALL"
    TOOL_REJECTED = "TOOL_REJECTED"
    COMMAND_OUTPUT = "COMMAND_OUTPUT"
    REVIEW_REQUESTED = "REVIEW_REQUESTED"
    CHANGES_APPROVED = "CHANGES_APPROVED"
    CHANGES_REJECTED = "CHANGES_REJECTED"
    CHANGES_ROLLED_BACK = "CHANGES_ROLLED_BACK"
    PR_OPENED = "PR_OPENED"
    INTEGRATION_ERROR = "INTEGRATION_ERROR"
    COMMAND_FINISHED = "COMMAND_FINISHED"
    REVIEW_REPORT = "REVIEW_REPORT"


class Event(models.Model):
    """One entry of a run's append-only log, numbered 1, 2, 3... per run.

    Written only by `events.recorder.record_event`; never updated or deleted by the application.
    """

    # No index of its own: the unique (run, seq) index serves every lookup by run, one index less per event.
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="event_seq_unique_per_run")]
        indexes = [
            # The worker looks for new directives at every step: this finds them without reading the
            # events between (a long run has many), and costs nothing when other events are written.
            models.Index(
                fields=["run", "seq"], condition=models.Q(type="DIRECTIVE_RECEIVED"), name="event_directives"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"
