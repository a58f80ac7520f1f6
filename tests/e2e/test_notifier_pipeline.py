"""Through all four services: a need published by a buyer group whose webhook is a local
receiver reaches it as a signed alert that explains the match, and the group's inbox
lists it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.contracts.events import alert_id, match_id
from tests import factories
from tests.conftest import OPERATOR_TOKEN
from tests.kafka_helpers import eventually
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SECRET = "pipeline-receiver-secret-0123"


async def test_a_published_need_reaches_the_groups_webhook_signed_and_explained(
    services: dict[str, str],
) -> None:
    receiver = WebhookReceiver(SECRET).start()
    marker = uuid.uuid4().hex[:8]
    # Earlier tests leave many suppliers with the factory's profile, which score 1.0 against the
    # factory's need, and a need keeps only its top K (ties broken by supplier id). So this need
    # is in a region that only this test's supplier serves.
    region = "SE332"
    word = "zq" + marker
    capabilities = {
        **factories.registration()["capabilities"],
        "keywords": ["laddstolpar", word],
        "regions": [region],
    }
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            supplier = await http.post(
                f"{services['suppliers']}/v1/suppliers",
                json=factories.registration(name=f"Laddbolaget {marker} AB", capabilities=capabilities),
            )
            assert supplier.status_code == 201, supplier.text
            supplier_id = supplier.json()["id"]
            authority = await http.post(
                f"{services['needs']}/v1/authorities", json=factories.authority(), headers=OPERATOR
            )
            assert authority.status_code == 201, authority.text
            alerts = {"webhook_url": receiver.url, "webhook_secret": SECRET, "min_score": 0.3}
            group = await http.post(
                f"{services['needs']}/v1/buyer-groups",
                json={
                    "name": f"Elbussgruppen {marker}",
                    "focus_area": "transport",
                    "member_authority_ids": [authority.json()["id"]],
                    "alerts": alerts,
                },
                headers=OPERATOR,
            )
            assert group.status_code == 201, group.text
            group_id, token = group.json()["id"], group.json()["token"]
            need = await http.post(
                f"{services['needs']}/v1/buyer-groups/{group_id}/needs",
                json=factories.need(
                    description=f"Snabbladdning av elbussar vid depåer, {word}.", regions=[region]
                ),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert need.status_code == 201, need.text
            need_id = need.json()["id"]

            def mine() -> list[Any]:
                return [a for a in receiver.alerts() if a.body["match"]["supplier_id"] == supplier_id]

            got = (await eventually(mine, timeout=60))[0]
            assert got.signature_ok
            principal = f"buyer_group:{group_id}"
            assert got.body["alert_id"] == alert_id(principal, match_id(need_id, supplier_id), "webhook")
            body = got.body
            assert body["recipient"] == principal and body["need"]["id"] == need_id
            assert body["supplier"]["name"] == f"Laddbolaget {marker} AB"
            assert body["explanation"]["region_verdict"] and body["summary"].startswith(
                f"Laddbolaget {marker} AB matchar behovet"
            )
            # The matcher sends the verdicts' facts; the summary says them in Swedish, by name.
            assert body["explanation"]["facts"]["need_regions"] == [region]
            assert "behovet gäller Norrbottens län" in body["summary"] and region not in body["summary"]
            assert body["links"]["why"].endswith(f"/needs/{need_id}/matches/{supplier_id}")
            assert body["need"]["buyer_groups"] == [f"Elbussgruppen {marker}"]

            inbox = await http.get(
                f"{services['notifier']}/v1/inbox", headers={"Authorization": f"Bearer {token}"}
            )
            assert inbox.status_code == 200
            assert supplier_id in {i["match"]["supplier_id"] for i in inbox.json()}
    finally:
        receiver.stop()
