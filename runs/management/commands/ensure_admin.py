"""Make sure the console has an administrator: ADMIN_USERNAME / ADMIN_PASSWORD, or a generated password
printed once when the user is first created."""

from __future__ import annotations

import secrets
from typing import Any

import environ
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin user if missing (password from ADMIN_PASSWORD, else generated and printed once)."

    def handle(self, *args: Any, **options: Any) -> None:
        env = environ.Env()
        username = env.str("ADMIN_USERNAME", default="admin")
        password = env.str("ADMIN_PASSWORD", default="")
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            generated = not password
            password = password or secrets.token_urlsafe(12)
            users.objects.create_superuser(username=username, email="", password=password)
            shown = password if generated else "(the ADMIN_PASSWORD you set)"
            self.stdout.write(f"Created admin user {username!r} with password: {shown}")
            if generated:
                self.stdout.write(
                    "  This password is shown only once: note it, or set ADMIN_PASSWORD and re-run."
                )
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Admin user {username!r}: password set from ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                f"Admin user {username!r} exists (its password was printed when it was created; "
                "set ADMIN_PASSWORD to reset it)."
            )
