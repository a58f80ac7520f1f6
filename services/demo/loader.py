"""Load the demo data set through the public HTTP APIs, as a real client would.

Every run registers a fresh copy: organisation numbers are drawn at random (valid check
digit, public bodies starting with 2), and a number that happens to be taken already (409)
is drawn again. So the demo runs against a stack that already holds data, including
earlier demo runs, without touching what is there.
"""

from __future__ import annotations

import asyncio
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.contracts.orgnr import luhn_check_digit
from services.demo import data

# Public bodies: state agencies 202..., municipalities 212..., regions 232... (as in the
# real register); companies 559... (limited companies registered in recent years).
_PUBLIC_PREFIX = {"national": "202", "local": "212", "regional": "232"}
_COMPANY_PREFIX = "559"
_ATTEMPTS = 5
_REDRAW = random.SystemRandom()
# Demo subscribers hear of every match the matcher emits, so the demo shows something.
DEMO_MIN_SCORE = 0.3
# Of the suppliers, every n-th also gets a webhook; the others use the inbox.
SUPPLIER_WEBHOOK_EVERY = 5


class LoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    suppliers_url: str
    needs_url: str
    operator_token: str


@dataclass
class Loaded:
    authorities: dict[str, str] = field(default_factory=dict)  # key -> id
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {id, token, name}
    suppliers: list[dict[str, Any]] = field(default_factory=list)  # {id, name, org_number, subscriber}
    needs: list[dict[str, Any]] = field(default_factory=list)  # {id, title, group, cosigners}
    # Webhook subscriber name (the last part of its URL) -> who it is, for printing.
    subscribers: dict[str, str] = field(default_factory=dict)


def org_number(prefix: str, rng: random.Random) -> str:
    """A valid organisationsnummer starting with the three-digit prefix."""
    first9 = prefix + f"{rng.randrange(1_000_000):06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def alerts(webhook_url: str | None, secret: str, language: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"language": language, "mode": "instant", "min_score": DEMO_MIN_SCORE}
    if webhook_url:
        settings.update(webhook_url=webhook_url, webhook_secret=secret)
    return settings


def supplier_body(s: data.DemoSupplier, number: str, alert_settings: dict[str, Any]) -> dict[str, Any]:
    domain = slug(s.name.removesuffix(" AB")) + ".se"
    return {
        "org_number": number,
        "name": s.name,
        "size": s.size,
        "company_type": s.company_type,
        "founded_year": s.founded_year,
        "contact_email": f"info@{domain}",
        "capabilities": {
            "cpv_codes": list(s.cpv_codes),
            "focus_areas": [s.focus_area],
            "keywords": list(s.keywords),
            "description": s.description,
            "regions": list(s.regions),
            "trl": s.trl,
        },
        "alerts": alert_settings,
    }


def need_body(n: data.DemoNeed, today: datetime) -> dict[str, Any]:
    return {
        "title": n.title,
        "description": n.description,
        "cpv_codes": list(n.cpv_codes),
        "focus_area": n.focus_area,
        "regions": list(n.regions),
        "min_trl": n.min_trl,
        "preferred_supplier_types": list(n.preferred_supplier_types),
        "procedure": n.procedure,
        "respond_by": (today + timedelta(days=n.respond_in_days)).date().isoformat(),
        "budget_sek": n.budget_sek,
    }


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise LoadError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    result: dict[str, Any] = response.json()
    return result


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST, waiting out a registration rate limit (429 with Retry-After) if there is one."""
    while True:
        response = await client.post(url, json=body, headers=headers)
        if response.status_code != 429:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def _register(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    prefix: str,
    rng: random.Random,
) -> dict[str, Any]:
    """Create something keyed by an organisation number, drawing a new one when taken.

    The first number comes from rng; redraws come from the system's randomness, so a run
    seeded like an earlier one does not walk through that run's numbers one by one.
    """
    for attempt in range(_ATTEMPTS):
        body = {**body, "org_number": org_number(prefix, rng if attempt == 0 else _REDRAW)}
        response = await _post(client, url, body, headers)
        if response.status_code != 409:
            return _checked(response, f"{body['name']}")
    raise LoadError(f"{body['name']}: {_ATTEMPTS} organisation numbers in a row were taken")


async def load(
    target: Target,
    *,
    webhook_url_for: Any,
    secret: str,
    rng: random.Random | None = None,
    concurrency: int = 8,
    into: Loaded | None = None,
) -> Loaded:
    """Post the whole data set; webhook_url_for(subscriber) gives each subscriber's URL.

    Fills `into` as it goes when given: alerts can arrive before loading is done.
    """
    rng = rng or random.Random()
    operator = {"Authorization": f"Bearer {target.operator_token}"}
    out = into if into is not None else Loaded()
    gate = asyncio.Semaphore(concurrency)
    today = datetime.now(UTC)
    async with (
        httpx.AsyncClient(base_url=target.needs_url, timeout=30) as needs,
        httpx.AsyncClient(base_url=target.suppliers_url, timeout=30) as suppliers,
    ):

        async def authority(a: data.DemoAuthority) -> None:
            async with gate:
                body = {"name": a.name, "level": a.level, "region": a.region}
                made = await _register(needs, "/v1/authorities", body, operator, _PUBLIC_PREFIX[a.level], rng)
                out.authorities[a.key] = made["id"]

        await asyncio.gather(*(authority(a) for a in data.AUTHORITIES))

        for g in data.GROUPS:
            out.subscribers[g.key] = f"buyer group {g.name}"
            body = {
                "name": g.name,
                "focus_area": g.focus_area,
                "member_authority_ids": [out.authorities[m] for m in g.members],
                "alerts": alerts(webhook_url_for(g.key), secret, g.language),
            }
            made = _checked(await needs.post("/v1/buyer-groups", json=body, headers=operator), g.name)
            out.groups[g.key] = {"id": made["id"], "token": made["token"], "name": g.name}

        async def supplier(i: int, s: data.DemoSupplier) -> None:
            subscriber = f"supplier-{slug(s.name)}" if i % SUPPLIER_WEBHOOK_EVERY == 0 else None
            url = webhook_url_for(subscriber) if subscriber else None
            if subscriber:
                out.subscribers[subscriber] = f"supplier {s.name}"
            body = supplier_body(s, "", alerts(url, secret, s.language))
            async with gate:
                made = await _register(suppliers, "/v1/suppliers", body, {}, _COMPANY_PREFIX, rng)
            out.suppliers.append(
                {"id": made["id"], "name": s.name, "org_number": made["org_number"], "subscriber": subscriber}
            )

        await asyncio.gather(*(supplier(i, s) for i, s in enumerate(data.SUPPLIERS)))

        for n in data.NEEDS:
            group = out.groups[n.group]
            auth = {"Authorization": f"Bearer {group['token']}"}
            made = _checked(
                await needs.post(
                    f"/v1/buyer-groups/{group['id']}/needs", json=need_body(n, today), headers=auth
                ),
                n.title,
            )
            for key in n.cosigned_by:
                cosigner = {"Authorization": f"Bearer {out.groups[key]['token']}"}
                made = _checked(await needs.post(f"/v1/needs/{made['id']}/cosign", headers=cosigner), n.title)
            out.needs.append(
                {"id": made["id"], "title": n.title, "group": n.group, "cosigners": made["cosigners"]}
            )
    return out
