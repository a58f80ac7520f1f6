from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.infra.http import field_path
from services.infra.settings import Settings
from services.matcher.app import create_app as matcher_app
from services.needs.app import create_app as needs_app
from services.notifier.app import create_app as notifier_app
from services.suppliers.app import create_app as suppliers_app

EVERY_SERVICE = [needs_app, suppliers_app, matcher_app, notifier_app]


def test_field_paths_name_nested_fields_and_list_items() -> None:
    assert field_path(("body", "capabilities", "cpv_codes", 2)) == "capabilities.cpv_codes[2]"
    assert field_path(("body", "org_number")) == "org_number"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"
    assert field_path(("body", 0)) == "[0]"


# Through a real service app: the router answers these before anything touches the database.


def _client(app: FastAPI, base_url: str) -> httpx.AsyncClient:
    # The server would log an exception the app raises; here the response is what counts.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def _ask(create_app: Callable[[Settings], FastAPI], method: str, path: str) -> httpx.Response:
    async with _client(create_app(Settings(mode="development")), "http://service") as http:
        return await http.request(method, path)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error of a response in the documented shape, and nothing beside it."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("create_app", EVERY_SERVICE)
async def test_an_unknown_route_answers_404_in_the_error_shape(
    create_app: Callable[[Settings], FastAPI],
) -> None:
    error = _error(await _ask(create_app, "GET", "/nope"), 404)
    assert error == {"code": "not_found", "message": "no such resource: /nope"}


async def test_a_wrong_method_answers_405_in_the_error_shape() -> None:
    async with _client(needs_app(Settings(mode="development")), "http://needs") as http:
        response = await http.delete("/v1/authorities")
        on_health = await http.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "DELETE" in response.json()["error"]["message"]
    assert "allow" in response.headers  # Starlette names the methods of the first route on the path
    assert on_health.status_code == 405
    assert on_health.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("create_app", EVERY_SERVICE)
async def test_every_service_answers_a_method_its_routes_do_not_take_with_405(
    create_app: Callable[[Settings], FastAPI],
) -> None:
    response = await _ask(create_app, "PUT", "/metrics")
    error = _error(response, 405)
    assert error == {"code": "method_not_allowed", "message": "PUT is not allowed on /metrics"}
    assert response.headers["allow"] == "GET"


async def test_an_unexpected_failure_answers_500_in_the_error_shape_and_tells_nothing_of_it() -> None:
    app = needs_app(Settings(mode="development"))

    async def broken() -> None:
        raise RuntimeError("connection to 10.0.0.5 refused")

    app.add_api_route("/broken", broken)
    async with _client(app, "http://needs") as http:
        response = await http.get("/broken")
    error = _error(response, 500)
    assert error == {"code": "internal", "message": "the service could not complete the request"}
