from __future__ import annotations

from rest_framework import serializers

from projects.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "local_path", "allowed_commands", "created_at"]
        read_only_fields = fields


class ProjectCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Unique name.")
    local_path = serializers.CharField(
        help_text="Absolute path of an existing directory inside one of PROJECT_ROOTS; symlinks are resolved."
    )

    allowed_commands = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text='Command-line prefixes the agent may run, e.g. ["pytest", "ruff check"]. Empty: none.',
    )


class ProjectUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    local_path = serializers.CharField(required=False)
    allowed_commands = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
