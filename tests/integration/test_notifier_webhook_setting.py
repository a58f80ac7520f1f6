"""Saving a webhook that points at this machine or a private network is refused (422)
unless INNOMATCH_WEBHOOK_ALLOW_PRIVATE is set; checked by the services that save alerts."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from services.suppliers.app import create_app
from tests import factories
from tests.conftest import Stack

SECRET = "s" * 20


def register(stack: Stack, url: str, **settings: Any) -> Any:
    app = create_app(stack.settings(registration_rate_per_minute=0, **settings))
    with TestClient(app) as client:
        alerts = {"webhook_url": url, "webhook_secret": SECRET}
        return client.post("/v1/suppliers", json=factories.registration(alerts=alerts))


def test_a_private_webhook_is_refused_when_saved(stack: Stack) -> None:
    for url in ("http://127.0.0.1:9000/hook", "https://10.0.0.7/hook", "https://169.254.169.254/x"):
        r = register(stack, url, webhook_allow_private=False)
        assert r.status_code == 422, r.text
        [problem] = r.json()["error"]["fields"]
        assert problem["field"] == "alerts.webhook_url"
        assert "loopback, private or link-local" in problem["reason"]


def test_development_may_allow_private_webhooks(stack: Stack) -> None:
    r = register(stack, "http://127.0.0.1:9000/hook", webhook_allow_private=True)
    assert r.status_code == 201, r.text
