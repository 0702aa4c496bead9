from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from runs.tasks import ensure_sweep_schedule

        post_migrate.connect(ensure_sweep_schedule, sender=self)
