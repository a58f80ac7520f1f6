"""Saving a webhook that points at this machine or a private network is refused (422)
unless INNOMATCH_WEBHOOK_ALLOW_PRIVATE is set; one that points at a link-local or cloud
metadata address is refused always, also in development. Checked by the services that save
alert settings: suppliers for themselves, needs for buyer groups."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from services.needs.app import create_app as needs_app
from services.suppliers.app import create_app as suppliers_app
from tests import factories
from tests.conftest import OPERATOR_TOKEN, Stack

SECRET = "s" * 20
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
METADATA = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[::a9fe:a9fe]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]:8040/",
]


def register(stack: Stack, url: str, **settings: Any) -> Any:
    app = suppliers_app(stack.settings(registration_rate_per_minute=0, **settings))
    with TestClient(app) as client:
        alerts = {"webhook_url": url, "webhook_secret": SECRET}
        return client.post("/v1/suppliers", json=factories.registration(alerts=alerts))


def only_problem(response: Any) -> str:
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["fields"]
    assert problem["field"] == "alerts.webhook_url"
    reason: str = problem["reason"]
    return reason


def test_a_private_webhook_is_refused_when_saved(stack: Stack) -> None:
    for url in ("http://127.0.0.1:9000/hook", "https://10.0.0.7/hook", "http://localhost:9000/hook"):
        reason = only_problem(register(stack, url, webhook_allow_private=False))
        assert "loopback or private" in reason


def test_development_may_allow_private_webhooks(stack: Stack) -> None:
    r = register(stack, "http://127.0.0.1:9000/hook", webhook_allow_private=True)
    assert r.status_code == 201, r.text


def test_a_supplier_webhook_at_a_metadata_address_is_refused_even_in_development(stack: Stack) -> None:
    for url in METADATA:
        for allow_private in (True, False):
            reason = only_problem(register(stack, url, webhook_allow_private=allow_private))
            assert "link-local or cloud metadata" in reason, (url, reason)


def test_a_buyer_group_webhook_at_a_metadata_address_is_refused_even_in_development(stack: Stack) -> None:
    app = needs_app(stack.settings(webhook_allow_private=True))
    with TestClient(app) as client:
        authority = client.post("/v1/authorities", json=factories.authority(), headers=OPERATOR)
        assert authority.status_code == 201, authority.text
        body: dict[str, Any] = {
            "name": "Elbussgruppen",
            "focus_area": "transport",
            "member_authority_ids": [authority.json()["id"]],
        }
        for url in METADATA:
            alerts = {"webhook_url": url, "webhook_secret": SECRET}
            r = client.post("/v1/buyer-groups", json={**body, "alerts": alerts}, headers=OPERATOR)
            assert "link-local or cloud metadata" in only_problem(r), url
        # Saved with an allowed webhook, it cannot be changed to a metadata one either.
        alerts = {"webhook_url": "http://127.0.0.1:9000/hook", "webhook_secret": SECRET}
        created = client.post("/v1/buyer-groups", json={**body, "alerts": alerts}, headers=OPERATOR)
        assert created.status_code == 201, created.text
        patch = {"alerts": {"webhook_url": METADATA[0]}}
        r = client.patch(f"/v1/buyer-groups/{created.json()['id']}", json=patch, headers=OPERATOR)
        assert "link-local or cloud metadata" in only_problem(r)
