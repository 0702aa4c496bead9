"""Who is asking: the API's token (DRF's authentication) and the console's session user (Django's model
backend), each with the user read in one SQL statement.

Its own module because DRF imports the authentication classes while `rest_framework.views` is still
loading, which config.api imports.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import backends, get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from config.rows import field_names, instances


class TokenAuthentication(authentication.TokenAuthentication):
    """Same header parsing, checks and messages as DRF's; only the read differs. Through the query compiler
    `select_related("user").get(key=...)` cost ~0.25 ms of CPU on every API request, the SQL ~0.05 ms
    (measured; bench/events_api.py)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        from rest_framework.authtoken.models import Token  # not importable before the apps are loaded

        users, tokens = get_user_model()._meta, Token._meta
        sql = (
            f"SELECT u.* FROM {tokens.db_table} t JOIN {users.db_table} u "  # noqa: S608 (names from models)
            f"ON u.{users.pk.column} = t.{tokens.get_field('user').column} WHERE t.{tokens.pk.column} = %s"
        )
        user = next(iter(get_user_model().objects.raw(sql, [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # The token as select_related("user") leaves it, without its `created` (read only if asked for).
        token = Token.from_db(DEFAULT_DB_ALIAS, ["key", "user_id"], [key, user.pk])
        token.user = user
        return user, token


class ModelBackend(backends.ModelBackend):
    """Django's model backend; the user of a console session is read as SQL. Every console request loads
    it: through the query compiler `get(pk=...)` cost ~0.2 ms of CPU, about a tenth of a run page's poll
    (measured; bench/load.py). Passwords, permissions and the checks on the user stay Django's."""

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        table, pk = model._meta.db_table, model._meta.pk.column
        found = instances(model, field_names(model), f"FROM {table} WHERE {pk} = %s", [user_id])
        return found[0] if found and self.user_can_authenticate(found[0]) else None
