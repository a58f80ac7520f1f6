"""Entity tags of versioned resources, and optimistic concurrency with If-Match."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from services.infra.errors import PreconditionFailed

IfMatch = Annotated[
    str | None,
    Header(description='W/"<version>" from the ETag you read; optional, 412 when stale'),
]


def etag(version: int) -> str:
    """A weak entity tag: equal versions are equal resources."""
    return f'W/"{version}"'


def check_if_match(if_match: str | None, version: int, what: str) -> None:
    """Raise PreconditionFailed unless If-Match is absent, `*` or names `version` of `what`."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",")]
    wanted = f'"{version}"'
    if "*" in tags or any(tag.removeprefix("W/") == wanted for tag in tags):
        return
    raise PreconditionFailed(
        f"the {what} is at version {version}; read it again and retry", current_etag=etag(version)
    )
