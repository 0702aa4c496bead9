"""URL converters: database ids fit in 64 bits, so longer numbers are no route (a 404), never a 500."""

from __future__ import annotations


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
