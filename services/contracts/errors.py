"""The errors a pure rule raises when it refuses a change. They know nothing of HTTP: the web
layer (`services.infra.http`) maps each kind to its response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class RuleError(Exception):
    """A rule of the domain refused a change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidData(RuleError):
    """The change would leave invalid data: `errors` name the fields, as pydantic does
    (`loc`, `msg`, `type`), from the request body's root."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("the request is not valid")
        self.errors = [dict(e) for e in errors]


class StateConflict(RuleError):
    """The change does not fit the aggregate's current state (a closed need, say)."""
