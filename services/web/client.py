"""The other services' public HTTP APIs, as the forum calls them (aiohttp, one pooled session).

The forum holds no data of its own about needs, suppliers or matches: every page asks the
service that owns them, with the signed-in principal's token (or none, for public reads, or
the operator token where the forum acts for a person it has checked itself: sending a sign-in
link, a supplier's public profile). Error bodies keep the services' one shape; a 422's
fields come back as a mapping from field path to reason, for the form that caused them.

aiohttp rather than httpx: a page makes up to four calls, and httpx's client costs several
times aiohttp's CPU a request (see the README's benchmarks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp

Service = Literal["suppliers", "needs", "matcher", "notifier"]


class ApiError(Exception):
    """A service answered with an error status (or did not answer: status 503)."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields: dict[str, str] = dict(fields or {})


def _error(status: int, reason: str, text: str) -> ApiError:
    try:
        body = json.loads(text)
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    fields: dict[str, str] = {}
    for f in error.get("fields") or []:
        fields.setdefault(str(f.get("field", "")), str(f.get("reason", "")))
    return ApiError(status, str(error.get("code", "error")), str(error.get("message", reason)), fields)


class Backend:
    def __init__(self, urls: Mapping[str, str], operator_token: str | None, timeout_s: float = 10.0) -> None:
        self._urls = dict(urls)
        self._operator_token = operator_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None  # made in the running loop

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=100), raise_for_status=False
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def operator_token(self) -> str | None:
        return self._operator_token

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """The JSON of a successful answer (None for 204); ApiError otherwise."""
        _check_path(path)
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http().request(
                method, self._urls[service] + path, headers=headers, params=_query(params), json=body
            ) as response:
                text = await response.text()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"the {service} service did not answer") from exc
        if status >= 400:
            raise _error(status, reason, text)
        if status == 204 or not text:
            return None
        return json.loads(text)

    async def as_operator(self, service: Service, method: str, path: str, **kwargs: Any) -> Any:
        if not self._operator_token:
            raise ApiError(503, "no_operator_token", "the forum has no operator token configured")
        return await self.call(service, method, path, token=self._operator_token, **kwargs)

    async def fresh_token(self, kind: Literal["supplier", "buyer_group"], ident: str) -> str:
        """A new API token for a principal the forum has signed in (issued by its own service)."""
        if kind == "supplier":
            issued = await self.as_operator("suppliers", "POST", f"/v1/suppliers/{ident}/token")
        else:
            issued = await self.as_operator("needs", "POST", f"/v1/buyer-groups/{ident}/token")
        return str(issued["token"])

    async def text(self, service: Service, path: str, *, token: str | None, params: Mapping[str, Any]) -> str:
        """An HTML or text representation (the dialogue record, say)."""
        _check_path(path)
        headers = {"Accept": "text/html", **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            async with self._http().get(
                self._urls[service] + path, headers=headers, params=_query(params)
            ) as response:
                text = await response.text()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"the {service} service did not answer") from exc
        if status >= 400:
            raise _error(status, reason, text)
        return text


_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._~-]*")


def _check_path(path: str) -> None:
    """Ids from the page's URL go into these paths: a segment that is not a plain id (a dot
    segment, a query, an encoded character) would call another route than the page meant."""
    segments = path.split("/")
    if any(s in (".", "..") or not _SAFE_SEGMENT.fullmatch(s) for s in segments):
        raise ApiError(404, "not_found", "no such resource")


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters without the empty ones, as strings."""
    return {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}
