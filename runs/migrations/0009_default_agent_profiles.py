"""The three profiles every installation starts with: coder, reviewer, planner."""

from django.db import migrations

READ_ONLY = ["list_files", "read_file"]
PROFILES = [
    {
        "name": "coder",
        "description": "Changes code with every tool and commits each step.",
        "system_prompt": "You write and change code. Keep changes small, tested and focused on the goal.",
        "allowed_tools": [],
    },
    {
        "name": "reviewer",
        "description": "Reads the code and reports a pass/fail verdict; changes nothing.",
        "system_prompt": (
            "You review code. Read what changed and what it touches; change nothing. Finish with success true "
            "if the work is correct and complete (pass) or false (fail), and a summary that is your review report."
        ),
        "allowed_tools": READ_ONLY,
        "reports_verdict": True,
    },
    {
        "name": "planner",
        "description": "Reads the code and produces a plan for the next steps; changes nothing.",
        "system_prompt": (
            "You plan work. Read what you need, reply with a plan of concrete steps, then finish with a summary "
            "that lists the steps so that the next agent can follow them."
        ),
        "allowed_tools": READ_ONLY,
    },
]


def create_profiles(apps, schema_editor):
    AgentProfile = apps.get_model("runs", "AgentProfile")
    for profile in PROFILES:
        AgentProfile.objects.update_or_create(name=profile["name"], defaults=profile)


def remove_profiles(apps, schema_editor):
    apps.get_model("runs", "AgentProfile").objects.filter(name__in=[p["name"] for p in PROFILES]).delete()


class Migration(migrations.Migration):
    dependencies = [("runs", "0008_agent_profiles")]

    operations = [migrations.RunPython(create_profiles, remove_profiles)]
