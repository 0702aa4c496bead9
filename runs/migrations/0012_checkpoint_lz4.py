"""PostgreSQL: the run's checkpoint (an LLM agent's whole conversation, often 10-30 KB) is rewritten with
every event the agent records, and compressing it with pglz, the default, cost ~0.5 ms of each such write
(17 KB: 1.41 ms an UPDATE with pglz, 0.90 with lz4, 0.84 with a small value). lz4 where the server has it;
a server built without it keeps pglz. Nothing changes on SQLite."""

from django.db import migrations

COLUMNS = [("runs_run", "checkpoint"), ("events_event", "payload")]


def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        )
        if cursor.fetchone() is None:
            return
        for table, column in COLUMNS:
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def use_default(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table, column in COLUMNS:
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION DEFAULT")


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0011_directive_seq"),
        ("events", "0004_directive_index_no_run_index"),
    ]

    operations = [migrations.RunPython(use_lz4, use_default)]
