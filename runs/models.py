from __future__ import annotations

from django.conf import settings
from django.db import models


class RunStatus(models.TextChoices):
    """QUEUED -> RUNNING -> COMPLETED | FAILED, with PAUSED and STOPPED by operators.

    The transition table lives in `runs.lifecycle`; STOPPED, COMPLETED and FAILED are final.
    """

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


TERMINAL_STATUSES = frozenset({RunStatus.STOPPED, RunStatus.COMPLETED, RunStatus.FAILED})
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED})
RUNNABLE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class ReviewState(models.TextChoices):
    """none -> pending (the run changed files) -> approved -> rolled_back, or pending -> rejected."""

    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"


class RunType(models.TextChoices):
    AGENT = "agent"
    WORKFLOW = "workflow"
    PIPELINE = "pipeline"
    TASK = "task"


class Run(models.Model):
    """A goal for an agent on a project, executed by one leased worker at a time.

    Status and the worker fields change only through `runs.lifecycle`; events only through
    `events.recorder.record_event`, which numbers them with `event_seq`.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=200, blank=True)
    goal = models.TextField()
    run_type = models.CharField(max_length=20, choices=RunType.choices, default=RunType.AGENT)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    current_iteration = models.PositiveIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True)
    run_metadata = models.JSONField(default=dict, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True, help_text="Agent state saved after each step.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    schedule = models.ForeignKey(
        "runs.Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    # Workflows: a child run belongs to its parent as one of its steps.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    step_key = models.CharField(max_length=100, blank=True)
    # Worker lease: who executes the run and until when, fenced on every write the worker makes.
    lease_owner = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 (NULL = no lease)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0, help_text="How many times a worker claimed the run.")
    workers_lost = models.PositiveIntegerField(default=0)
    # The run's git workspace: its branch in the project's repository and the commit it started from.
    branch = models.CharField(max_length=200, blank=True)
    base_commit = models.CharField(max_length=64, blank=True)
    base_branch = models.CharField(max_length=200, blank=True, help_text="The branch approval merges into.")
    # Review: a run's changes reach the project only through an explicit approval.
    review_state = models.CharField(max_length=20, choices=ReviewState.choices, default=ReviewState.NONE)
    merge_commit = models.CharField(max_length=64, blank=True)
    revert_commit = models.CharField(max_length=64, blank=True)
    pull_request_url = models.URLField(max_length=500, blank=True)
    taiga_item = models.JSONField(
        default=dict, blank=True, help_text="The Taiga story or task this run reports to."
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_runs",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    # Counters owned by the event recorder and the directive queue.
    event_seq = models.PositiveIntegerField(default=0)
    directive_cursor = models.PositiveIntegerField(default=0, help_text="seq of the last applied directive.")
    # Beside the status the worker checks anyway: it reads the directives only when there are new ones.
    directive_seq = models.PositiveIntegerField(default=0, help_text="seq of the last received directive.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="run_newest_first"),
            models.Index(fields=["status", "-created_at"], name="run_status_newest"),
            # The dashboard counts runs per status: a narrow index is half the pages to read (100,000 runs:
            # 9 -> 4 ms on SQLite).
            models.Index(fields=["status"], name="run_status"),
            models.Index(fields=["project", "-created_at"], name="run_project_newest"),
            models.Index(fields=["review_state", "-created_at"], name="run_review_newest"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "step_key"],
                condition=models.Q(parent__isnull=False),
                name="one_child_per_step",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def max_steps(self) -> int:
        return int(self.options.get("max_steps", 3))


class Schedule(models.Model):
    """A recurring run: every time `cron` comes due, a run is created from this template.

    Fired by the periodic sweep (`runs.schedules.fire_due`); a slot missed while nothing ran is not
    replayed: the next run is computed from the time it fires.
    """

    name = models.CharField(max_length=200, unique=True)
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="schedules")
    goal = models.TextField()
    run_type = models.CharField(max_length=20, choices=RunType.choices, default=RunType.AGENT)
    options = models.JSONField(default=dict, blank=True)
    run_metadata = models.JSONField(default=dict, blank=True)
    cron = models.CharField(
        max_length=100, help_text='Cron expression in TIME_ZONE, e.g. "0 2 * * *" for 02:00.'
    )
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    """A named kind of LLM agent (`options.agent` = its name): prompt, tools, model and limits."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    system_prompt = models.TextField(blank=True, help_text="Added to the agent's instructions.")
    allowed_tools = models.JSONField(
        default=list, blank=True, help_text="Tool actions it may use; empty means all of them."
    )
    model = models.CharField(max_length=200, blank=True, help_text="LLM model; empty: LLM_MODEL.")
    max_steps = models.PositiveIntegerField(null=True, blank=True, help_text="Default model-turn budget.")
    max_tokens = models.PositiveIntegerField(null=True, blank=True, help_text="Default token budget.")
    reports_verdict = models.BooleanField(
        default=False, help_text="Ends with a REVIEW_REPORT event and a pass/fail verdict instead of failing."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
