from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from services.infra.http import field_path
from services.infra.settings import Settings
from services.needs.app import create_app as needs_app
from services.suppliers.app import create_app as suppliers_app


def test_field_paths_name_nested_fields_and_list_items() -> None:
    assert field_path(("body", "capabilities", "cpv_codes", 2)) == "capabilities.cpv_codes[2]"
    assert field_path(("body", "org_number")) == "org_number"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"
    assert field_path(("body", 0)) == "[0]"


# Through a real service app: the router answers these before anything touches the database.


def _client(app: FastAPI, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.mark.parametrize("create_app", [needs_app, suppliers_app])
async def test_an_unknown_route_answers_404_in_the_error_shape(
    create_app: Callable[[Settings], FastAPI],
) -> None:
    async with _client(create_app(Settings(mode="development")), "http://service") as http:
        response = await http.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "not_found"
    assert "/nope" in body["error"]["message"]


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
