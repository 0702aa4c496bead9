from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery


def fill_directive_seq(apps, schema_editor):
    """Existing runs with directives: the seq of their last DIRECTIVE_RECEIVED."""
    Run = apps.get_model("runs", "Run")
    Event = apps.get_model("events", "Event")
    last = (
        Event.objects.filter(run_id=OuterRef("pk"), type="DIRECTIVE_RECEIVED")
        .values("run_id")
        .annotate(seq=Max("seq"))
        .values("seq")
    )
    with_directives = Event.objects.filter(type="DIRECTIVE_RECEIVED").values("run_id")
    Run.objects.filter(pk__in=with_directives).update(directive_seq=Subquery(last))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0010_status_index"),
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="directive_seq",
            field=models.PositiveIntegerField(default=0, help_text="seq of the last received directive."),
        ),
        migrations.RunPython(fill_directive_seq, migrations.RunPython.noop, elidable=True),
    ]
