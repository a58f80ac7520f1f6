"""The other services' public HTTP APIs, as the forum calls them (httpx, one pooled client).

The forum holds no data of its own about needs, suppliers or matches: every page asks the
service that owns them, with the signed-in principal's token (or none, for public reads, or
the operator token where the forum acts for a person it has checked itself: sending a sign-in
link, a supplier's public profile). Error bodies keep the services' one shape; a 422's
fields come back as a mapping from field path to reason, for the form that caused them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import httpx

Service = Literal["suppliers", "needs", "matcher", "notifier"]


class ApiError(Exception):
    """A service answered with an error status (or did not answer: status 503)."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields: dict[str, str] = dict(fields or {})


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    fields: dict[str, str] = {}
    for f in error.get("fields") or []:
        fields.setdefault(str(f.get("field", "")), str(f.get("reason", "")))
    return ApiError(
        response.status_code,
        str(error.get("code", "error")),
        str(error.get("message", response.reason_phrase)),
        fields,
    )


class Backend:
    def __init__(self, urls: Mapping[str, str], operator_token: str | None, timeout_s: float = 10.0) -> None:
        self._urls = dict(urls)
        self._operator_token = operator_token
        self._http = httpx.AsyncClient(
            timeout=timeout_s, limits=httpx.Limits(max_connections=100, max_keepalive_connections=50)
        )

    async def close(self) -> None:
        await self._http.aclose()

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
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._http.request(
                method, self._urls[service] + path, headers=headers, params=query, json=body
            )
        except httpx.HTTPError as exc:
            raise ApiError(503, "unavailable", f"the {service} service did not answer") from exc
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

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
        headers = {"Accept": "text/html", **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            response = await self._http.get(self._urls[service] + path, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(503, "unavailable", f"the {service} service did not answer") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response.text
