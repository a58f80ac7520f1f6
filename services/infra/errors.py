"""The root of every error a service raises on purpose, each with a stable machine code.

The HTTP layer maps `status` to the response in one place (`infra.http`).
"""

from __future__ import annotations

from typing import Any


class InnomatchError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


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
