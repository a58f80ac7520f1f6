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


Example = tuple[str, str]  # (what the status means here, the example error's message)


def error_examples(
    resource: str,
    *,
    forbidden: Example,
    not_found: Example,
    conflict: Example,
    invalid_fields: list[dict[str, str]],
    **more: tuple[str, dict[str, Any]],
) -> dict[int, tuple[str, dict[str, Any]]]:
    """The examples `openapi_errors` reads, for an API about `resource` ("need", "supplier"):
    the statuses every API answers alike, and its own 403, 404, 409 and 422 (`more`: extra
    statuses by "s<code>", each with its description and body)."""
    examples: dict[int, tuple[str, dict[str, Any]]] = {
        401: ("No or bad bearer token", error_body("unauthenticated", "a bearer token is required")),
        403: (forbidden[0], error_body("forbidden", forbidden[1])),
        404: (not_found[0], error_body("not_found", not_found[1])),
        409: (conflict[0], error_body("conflict", conflict[1])),
        412: (
            "If-Match names an older version",
            error_body("precondition_failed", f"the {resource} is at version 3", current_etag='W/"3"'),
        ),
        413: (
            "The body is over 64 KiB",
            error_body("payload_too_large", "the request body is over 65536 bytes"),
        ),
        422: (
            "Invalid input; each failing field is named by its path",
            error_body("invalid", "the request is not valid", fields=invalid_fields),
        ),
    }
    for key, example in more.items():
        examples[int(key.removeprefix("s"))] = example
    return examples


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
