"""The other services' public HTTP APIs, as the forum calls them (aiohttp, one pooled session).

The forum holds no data of its own about needs, suppliers or matches: every page asks the
service that owns them, with the signed-in principal's token (or none, for public reads, or
the operator token where the forum acts for a person it has checked itself: sending a sign-in
link, a supplier's public profile). Error bodies keep the services' one shape; a 422's
fields come back as a mapping from field path to reason, for the form that caused them.

aiohttp rather than httpx: a page makes up to four calls, and httpx's client costs several
times aiohttp's CPU a request (see the README's benchmarks).

Reads are kept for a moment (`INNOMATCH_WEB_READ_CACHE_SECONDS`, 2 s by default; see
services/web/read_cache.py): a page that many visitors open at once asks each service once.
A copy is only ever served to the same token it was fetched with (public reads to anyone).
Any change made through the forum drops every kept copy, so whoever changes something sees
the change on the next page; a change made elsewhere shows within twice those seconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
import orjson

from services.web.read_cache import ReadCache

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
        body = orjson.loads(text)
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except orjson.JSONDecodeError:
        error = {}
    fields: dict[str, str] = {}
    for f in error.get("fields") or []:
        fields.setdefault(str(f.get("field", "")), str(f.get("reason", "")))
    return ApiError(status, str(error.get("code", "error")), str(error.get("message", reason)), fields)


_Key = tuple[str, str, str, tuple[tuple[str, str], ...]]  # token, service, path, query


class Backend:
    def __init__(
        self,
        urls: Mapping[str, str],
        operator_token: str | None,
        timeout_s: float = 10.0,
        read_cache_s: float = 0.0,
    ) -> None:
        self._urls = dict(urls)
        self._operator_token = operator_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None  # made in the running loop
        self._reads: ReadCache[_Key, str] | None = ReadCache(read_cache_s) if read_cache_s > 0 else None

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
        if method == "GET":
            return _json(await self.read(service, path, token=token, params=params))
        _check_path(path)
        if self._reads is not None:
            self._reads.clear()
        return _json(await self._send(service, method, path, token, _query(params), body))

    async def read(
        self,
        service: Service,
        path: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        """The JSON text of a successful GET ("" for none), kept for the read cache's seconds:
        the same text object while it is kept, so a page may key its own work on it."""
        _check_path(path)
        query = _query(params)
        if self._reads is None:
            return await self._send(service, "GET", path, token, query, None)
        key = (token or "", service, path, tuple(sorted(query.items())))
        return await self._reads.get(key, lambda: self._send(service, "GET", path, token, query, None))

    async def _send(
        self, service: Service, method: str, path: str, token: str | None, query: dict[str, str], body: Any
    ) -> str:
        """The body of a successful answer ("" for none); ApiError otherwise."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http().request(
                method, self._urls[service] + path, headers=headers, params=query, json=body
            ) as response:
                text = await response.text()
                status, reason = response.status, response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"the {service} service did not answer") from exc
        if status >= 400:
            raise _error(status, reason, text)
        return "" if status == 204 else text

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


def _json(text: str) -> Any:
    """A fresh object for each caller, so that no page changes another's copy (orjson: the
    forum parses every answer it shows, and the standard library takes 2.5x as long)."""
    return orjson.loads(text) if text else None


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
