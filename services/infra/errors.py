"""The root of every error a service raises on purpose, each with a stable machine code.

The HTTP layer maps `status` to the response in one place (`infra.http`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one JSON shape of every error response."""
    return {"error": {"code": code, "message": message, **extra}}


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    """`error_body` as a model, for the OpenAPI document."""

    error: ErrorDetail


def openapi_errors(
    examples: Mapping[int, tuple[str, dict[str, Any]]], *statuses: int
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for `statuses`, each with its description and example
    body from `examples` (status -> (description, body))."""
    return {
        status: {
            "model": ErrorBody,
            "description": examples[status][0],
            "content": {"application/json": {"example": examples[status][1]}},
        }
        for status in statuses
    }


class InnomatchError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers this error calls for."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


class NotFound(InnomatchError):
    code = "not_found"
    status = 404


class Unauthenticated(InnomatchError):
    code = "unauthenticated"
    status = 401


class Forbidden(InnomatchError):
    code = "forbidden"
    status = 403


class Conflict(InnomatchError):
    code = "conflict"
    status = 409


class PreconditionFailed(InnomatchError):
    code = "precondition_failed"
    status = 412
