"""The demo loader against the running services: the data lands through the public APIs,
a second run adds a fresh copy beside the first, and the alerts that come back to the local
receiver are signed with the demo's secret and name the demo's needs."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.demo import data
from services.demo.loader import Loaded, Target, load
from services.demo.receiver import Receiver
from services.demo.show import format_alert
from services.infra.devstack import free_port
from services.infra.settings import SERVICES
from tests.conftest import OPERATOR_TOKEN
from tests.kafka_helpers import eventually

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SEED = 20261124


@dataclass
class Demo:
    target: Target
    receiver: Receiver
    secret: str
    loaded: Loaded


@pytest.fixture(scope="module")
async def demo(services: dict[str, str]) -> AsyncIterator[Demo]:
    secret = secrets.token_hex(24)
    receiver = Receiver(secret, lambda _name, _body: None).start()
    target = Target(services["suppliers"], services["needs"], OPERATOR_TOKEN)
    try:
        loaded = await load(target, webhook_url_for=receiver.url_for, secret=secret, rng=random.Random(SEED))
        yield Demo(target, receiver, secret, loaded)
    finally:
        receiver.stop()


async def test_the_data_set_lands_through_the_apis(demo: Demo, services: dict[str, str]) -> None:
    loaded = demo.loaded
    async with (
        httpx.AsyncClient(base_url=services["needs"], timeout=30) as needs,
        httpx.AsyncClient(base_url=services["suppliers"], timeout=30) as suppliers,
    ):
        listed = {a["id"]: a for a in (await needs.get("/v1/authorities", headers=OPERATOR)).json()}
        mine = [listed[i] for i in loaded.authorities.values()]
        assert Counter(a["level"] for a in mine) == Counter(a.level for a in data.AUTHORITIES)
        assert all(a["org_number"].startswith("2") for a in mine)

        assert len(loaded.groups) == len(data.GROUPS)
        for spec in data.GROUPS:
            group = (
                await needs.get(f"/v1/buyer-groups/{loaded.groups[spec.key]['id']}", headers=OPERATOR)
            ).json()
            assert group["name"] == spec.name and len(group["members"]) == len(spec.members)
            assert group["alerts"]["has_webhook_secret"] is True
            assert group["alerts"]["webhook_url"] == demo.receiver.url_for(spec.key)

        assert len(loaded.suppliers) == len(data.SUPPLIERS)
        names = set()
        for s in loaded.suppliers:
            got = await suppliers.get(f"/v1/suppliers/{s['id']}", headers=OPERATOR)
            assert got.status_code == 200, got.text
            names.add(got.json()["name"])
            assert got.json()["alerts"]["has_webhook_secret"] is bool(s["subscriber"])
        assert names == {s.name for s in data.SUPPLIERS}

        assert len(loaded.needs) == len(data.NEEDS)
        for spec, n in zip(data.NEEDS, loaded.needs, strict=True):
            got = (await needs.get(f"/v1/needs/{n['id']}")).json()
            assert got["title"] == spec.title and got["status"] == "open"
            assert got["cosigners"] == [loaded.groups[k]["id"] for k in spec.cosigned_by]


async def test_a_second_run_adds_a_fresh_copy_drawing_new_org_numbers(demo: Demo) -> None:
    # The same seed draws the same organisation numbers first: every one is taken (409) and drawn again.
    again = await load(
        demo.target, webhook_url_for=demo.receiver.url_for, secret=demo.secret, rng=random.Random(SEED)
    )
    assert len(again.suppliers) == len(data.SUPPLIERS) and len(again.needs) == len(data.NEEDS)
    first = {s["org_number"] for s in demo.loaded.suppliers}
    assert first.isdisjoint(s["org_number"] for s in again.suppliers)
    assert set(again.authorities.values()).isdisjoint(demo.loaded.authorities.values())


async def test_alerts_arrive_signed_and_explained(demo: Demo) -> None:
    """Needs the matcher and the notifier: a match on a demo need reaches the receiver."""
    needs = {n["id"]: n["title"] for n in demo.loaded.needs}

    def about_demo_needs() -> list[tuple[str, Any]]:
        return [
            (name, body) for name, body in demo.receiver.received if any(i in json.dumps(body) for i in needs)
        ]

    arrived = await eventually(about_demo_needs, timeout=90, interval=0.5)
    assert demo.receiver.refused == 0  # every call carried a valid signature under the demo's secret
    name, body = arrived[0]
    shown = format_alert(name, body)
    assert any(title in shown for title in needs.values()), shown


@pytest.mark.timeout(300)
def test_innomatch_dev_demo_prints_explained_alerts(tmp_path: Path) -> None:
    """The command as a newcomer runs it: the stack, the data, then alerts with explanations."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNOMATCH_")}
    for service in SERVICES:
        env[f"INNOMATCH_{service.upper()}_PORT"] = str(free_port())
    args = ["--data-dir", str(tmp_path / "data"), "--kafka-port", str(free_port())]
    args += ["--postgres-port", str(free_port()), "--demo"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "dev", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()

    def alert_shown() -> bool:
        text = "".join(lines)
        start = text.find("Alert for ")
        return start >= 0 and "Need:" in text[start:] and "Why:" in text[start:]

    try:
        deadline = time.monotonic() + 240
        while not alert_shown():
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "no alert shown:\n" + "".join(lines)[-3000:]
            time.sleep(0.5)
        text = "".join(lines)
        assert "Demo data loaded" in text
        assert f"{len(data.SUPPLIERS)} suppliers, {len(data.NEEDS)} needs" in text
        assert "refused a webhook call" not in text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("innomatch dev --demo did not stop within 30 s of SIGINT")
    reader.join(5)
    assert "innomatch dev: stopped" in "".join(lines)
