"""The load a fault scenario drives through the public HTTP APIs, and what a client does when a
request fails.

The plan is the same in every scenario (a fixed seed); only the regions differ. Each scenario
gets two NUTS 3 regions of its own, and every need and supplier lies in them, so scenarios
never match each other's suppliers and a need's matches in one scenario correspond, item by
item, to those of the same need in another. Supplier texts come from a few short templates:
the matcher embeds a text once (vectors are stored by text), so only the first scenario pays
for the model.

A client retries what failed. A request whose outcome it cannot know (the connection broke
after it was sent, or a 5xx) is looked up before it is sent again where sending it twice
would create two things: a supplier registration (the organisation number is unique: a 409
means it exists) and a need (its budget is the marker).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from services.contracts.orgnr import luhn_check_digit

SECRET = "fault-suite-webhook-secret-0123456789"

# (focus area, need template, supplier templates); every text one or two short sentences.
DOMAINS: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    (
        "transport",
        {
            "title": "Laddinfrastruktur för elbussar",
            "description": "Snabbladdning av elbussar vid depåer och ändhållplatser.",
            "cpv_codes": ["31158100"],
        },
        [
            {
                "name": "Laddkraft AB",
                "description": "Laddinfrastruktur för elbussar och depåer.",
                "keywords": ["laddstolpar"],
                "cpv_codes": ["31158100"],
            },
            {
                "name": "ChargeGrid AB",
                "description": "Fast charging stations for electric buses at depots.",
                "keywords": ["charging", "electric buses"],
                "cpv_codes": ["31158100", "34144900"],
            },
        ],
    ),
    (
        "health_care",
        {
            "title": "Trygghetslarm och fallprevention i hemmet",
            "description": "Sensorer som larmar när en äldre person faller i sitt hem.",
            "cpv_codes": ["33195000"],
        },
        [
            {
                "name": "Hemtrygg Sensor AB",
                "description": "Fallsensorer och trygghetslarm för äldre i hemmet.",
                "keywords": ["fallsensor", "trygghetslarm"],
                "cpv_codes": ["33195000"],
            },
            {
                "name": "CareWatch AB",
                "description": "Remote patient monitoring and fall detection for elderly people at home.",
                "keywords": ["fall detection"],
                "cpv_codes": ["33195000", "33196200"],
            },
        ],
    ),
    (
        "sustainable_production",
        {
            "title": "Effektivare rening av avloppsvatten",
            "description": "Ny teknik för att rena avloppsvatten från läkemedelsrester.",
            "cpv_codes": ["90481000"],
        },
        [
            {
                "name": "Renvatten Teknik AB",
                "description": "Rening av avloppsvatten från läkemedelsrester med ozon.",
                "keywords": ["avloppsrening", "ozon"],
                "cpv_codes": ["90481000", "45232421"],
            },
            {
                "name": "AquaPure AB",
                "description": "Advanced wastewater treatment that removes pharmaceutical residues.",
                "keywords": ["wastewater"],
                "cpv_codes": ["90400000"],
            },
        ],
    ),
    (
        "community_building",
        {
            "title": "Solceller på kommunens tak",
            "description": "Solcellsanläggningar på skolor och förskolor med lagring av el.",
            "cpv_codes": ["09331200"],
        },
        [
            {
                "name": "Soltak Norden AB",
                "description": "Solcellsanläggningar på offentliga byggnader.",
                "keywords": ["solceller", "batterilager"],
                "cpv_codes": ["09331200"],
            },
        ],
    ),
    (
        "skills",
        {
            "title": "Digital plattform för distansundervisning",
            "description": "En plattform för e-lärande i gymnasieskolan.",
            "cpv_codes": ["80420000"],
        },
        [
            {
                "name": "Lärplattform AB",
                "description": "E-lärande och digitala lärplattformar för skolor.",
                "keywords": ["e-lärande"],
                "cpv_codes": ["80420000", "72212000"],
            },
            {
                "name": "EduCloud AB",
                "description": "Software for remote teaching in upper secondary schools.",
                "keywords": ["remote teaching"],
                "cpv_codes": ["72212000"],
            },
        ],
    ),
]

# Two NUTS 3 regions per scenario: 21 Swedish counties give ten scenarios of their own.
COUNTIES = [
    "SE110", "SE121", "SE122", "SE123", "SE124", "SE125", "SE211", "SE212", "SE213", "SE214",
    "SE221", "SE224", "SE231", "SE232", "SE311", "SE312", "SE313", "SE321", "SE322", "SE331", "SE332",
]  # fmt: skip


@dataclass(frozen=True)
class NeedPlan:
    index: int
    domain: int
    region: int  # 0 or 1: the scenario's first or second region
    min_trl: int
    group: int  # 0 or 1: which of the scenario's buyer groups publishes it
    close_at: int | None  # close it after this many supplier registrations were sent


@dataclass(frozen=True)
class SupplierPlan:
    index: int
    domain: int
    template: int
    regions: tuple[int, ...]
    trl: int
    raise_trl_to: int | None  # the update raises the TRL (may add matches); None: new e-mail only


@dataclass(frozen=True)
class Plan:
    needs: list[NeedPlan]
    suppliers: list[SupplierPlan]
    update_lag: int  # a supplier is updated after this many later registrations were sent

    @property
    def events(self) -> int:
        closes = sum(n.close_at is not None for n in self.needs)
        return len(self.needs) + closes + 2 * len(self.suppliers)


def make_plan(needs: int = 60, suppliers: int = 1000, closed_share: float = 0.3, seed: int = 15) -> Plan:
    """The load: `needs` needs, `suppliers` registrations and as many updates, a share of the
    needs closed while suppliers that fit them are still registering."""
    rng = random.Random(seed)
    need_plans = []
    for i in range(needs):
        closing = rng.random() < closed_share
        need_plans.append(
            NeedPlan(
                index=i,
                domain=i % len(DOMAINS),
                region=(i // len(DOMAINS)) % 2,
                min_trl=rng.randint(7, 9),
                group=i % 2,
                close_at=rng.randint(suppliers // 5, (suppliers * 4) // 5) if closing else None,
            )
        )
    supplier_plans = []
    for j in range(suppliers):
        domain = rng.randrange(len(DOMAINS))
        roll = rng.random()
        regions = (0,) if roll < 0.45 else (1,) if roll < 0.9 else (0, 1)
        trl = rng.randint(3, 9)
        supplier_plans.append(
            SupplierPlan(
                index=j,
                domain=domain,
                template=rng.randrange(len(DOMAINS[domain][2])),
                regions=regions,
                trl=trl,
                raise_trl_to=9 if trl < 9 and rng.random() < 0.3 else None,
            )
        )
    return Plan(need_plans, supplier_plans, update_lag=150)


def org_number(serial: int) -> str:
    """A valid organisationsnummer of a company, unique for `serial` < 10**6."""
    first9 = f"559{serial:06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def public_org_number(serial: int) -> str:
    first9 = f"212{serial:06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


@dataclass
class World:
    """One scenario's ids, by plan index."""

    regions: tuple[str, str]
    groups: list[tuple[str, str]] = field(default_factory=list)  # (id, token)
    needs: dict[int, str] = field(default_factory=dict)
    suppliers: dict[int, str] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    events: int = 0  # accepted writes, each one event on a topic
    retries: int = 0  # requests sent again after a failure
    looked_up: int = 0  # outcomes that had to be looked up after an unknown answer

    def group_principal(self, need: NeedPlan) -> str:
        return f"buyer_group:{self.groups[need.group][0]}"


class Unknown(Exception):
    """The request may or may not have taken effect."""


class LoadRunner:
    """Sends a plan through the APIs with `concurrency` requests in flight, retrying."""

    def __init__(
        self,
        urls: Callable[[str], str],
        operator_token: str,
        database_url: str,
        webhook_url: str,
        scenario: int,
        concurrency: int = 12,
        retry_for_s: float = 120,
    ) -> None:
        self.urls = urls
        self.operator = {"Authorization": f"Bearer {operator_token}"}
        self.database_url = database_url
        self.webhook_url = webhook_url
        self.scenario = scenario
        self.concurrency = concurrency
        self.retry_for_s = retry_for_s
        self.sent = 0  # supplier registrations sent so far (the load's clock)
        self.progress: Callable[[int], Awaitable[None]] | None = None

    def alerts(self) -> dict[str, Any]:
        return {
            "webhook_url": self.webhook_url,
            "webhook_secret": SECRET,
            "mode": "instant",
            "min_score": 0.0,
        }

    async def _send(
        self,
        http: httpx.AsyncClient,
        world: World,
        method: str,
        service: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        ok: tuple[int, ...],
        lookup: Callable[[], Awaitable[str | None]] | None = None,
    ) -> httpx.Response | str:
        """Send until an answer in `ok` (or, after an unknown outcome, `lookup` finds it)."""
        deadline = time.monotonic() + self.retry_for_s
        delay = 0.2
        unknown = False
        while True:
            if unknown and lookup is not None:
                world.looked_up += 1
                found = await lookup()
                if found is not None:
                    return found
            try:
                answer = await http.request(method, f"{self.urls(service)}{path}", json=body, headers=headers)
                if answer.status_code in ok:
                    return answer
                if answer.status_code == 409 and lookup is not None:
                    found = await lookup()
                    if found is not None:
                        world.looked_up += 1
                        return found
                if answer.status_code < 500 and answer.status_code != 409:
                    raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
                unknown = answer.status_code >= 500
            except httpx.ConnectError:
                pass  # never reached the service
            except (httpx.TransportError, KeyError):
                unknown = True  # sent, the answer lost (KeyError: no running process right now)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {path}: no success within {self.retry_for_s:.0f} s")
            world.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def setup(self, http: httpx.AsyncClient, world: World) -> None:
        base = self.scenario * 10
        authority = await self._send(
            http,
            world,
            "POST",
            "needs",
            "/v1/authorities",
            {
                "org_number": public_org_number(base + 1),
                "name": "Region Testlän",
                "level": "regional",
                "region": world.regions[0],
            },
            self.operator,
            (201,),
        )
        assert isinstance(authority, httpx.Response)
        for g in range(2):
            group = await self._send(
                http,
                world,
                "POST",
                "needs",
                "/v1/buyer-groups",
                {
                    "name": f"Feltålig inköpsgrupp {g + 1}",
                    "focus_area": "other",
                    "member_authority_ids": [authority.json()["id"]],
                    "alerts": self.alerts(),
                },
                self.operator,
                (201,),
            )
            assert isinstance(group, httpx.Response)
            world.groups.append((group.json()["id"], group.json()["token"]))
            world.events += 1

    def need_body(self, world: World, plan: NeedPlan) -> dict[str, Any]:
        focus, template, _ = DOMAINS[plan.domain]
        return {
            **template,
            "focus_area": focus,
            "regions": [world.regions[plan.region]],
            "min_trl": plan.min_trl,
            "preferred_supplier_types": [],
            "procedure": "innovation_partnership",
            "respond_by": "2099-06-30",
            # The marker that finds the need again after an answer that was lost.
            "budget_sek": 1_000_000 + self.scenario * 1000 + plan.index,
        }

    def supplier_body(self, world: World, plan: SupplierPlan) -> dict[str, Any]:
        focus, _, templates = DOMAINS[plan.domain]
        template = templates[plan.template]
        return {
            "org_number": org_number(self.scenario * 10_000 + plan.index),
            "name": template["name"],
            "size": "small",
            "company_type": "industrial",
            "founded_year": 2015,
            "contact_email": f"info{plan.index}@example.se",
            "capabilities": {
                "cpv_codes": template["cpv_codes"],
                "focus_areas": [focus],
                "keywords": template["keywords"],
                "description": template["description"],
                "regions": [world.regions[r] for r in plan.regions],
                "trl": plan.trl,
            },
            "alerts": self.alerts(),
        }

    async def publish_need(self, http: httpx.AsyncClient, world: World, plan: NeedPlan) -> None:
        group_id, token = world.groups[plan.group]
        body = self.need_body(world, plan)

        async def lookup() -> str | None:
            return await self._lookup(
                "SELECT id::text FROM needs.needs"
                " WHERE buyer_group_id = $1 AND (state->>'budget_sek')::bigint = $2",
                group_id,
                body["budget_sek"],
            )

        answer = await self._send(
            http,
            world,
            "POST",
            "needs",
            f"/v1/buyer-groups/{group_id}/needs",
            body,
            {"Authorization": f"Bearer {token}"},
            (201,),
            lookup,
        )
        world.needs[plan.index] = answer if isinstance(answer, str) else answer.json()["id"]
        world.events += 1

    async def close_need(self, http: httpx.AsyncClient, world: World, plan: NeedPlan) -> None:
        _, token = world.groups[plan.group]
        need_id = world.needs[plan.index]
        # A close sent again after a lost answer finds the need closed (409): closed all the same.
        await self._send(
            http,
            world,
            "POST",
            "needs",
            f"/v1/needs/{need_id}/close",
            {"reason": "the need was met"},
            {"Authorization": f"Bearer {token}"},
            (200, 409),
        )
        world.closed.add(plan.index)
        world.events += 1

    async def register(self, http: httpx.AsyncClient, world: World, plan: SupplierPlan) -> None:
        body = self.supplier_body(world, plan)

        async def lookup() -> str | None:
            return await self._lookup(
                "SELECT id::text FROM suppliers.suppliers WHERE org_number = $1", body["org_number"]
            )

        answer = await self._send(http, world, "POST", "suppliers", "/v1/suppliers", body, {}, (201,), lookup)
        world.suppliers[plan.index] = answer if isinstance(answer, str) else answer.json()["id"]
        world.events += 1

    async def update(self, http: httpx.AsyncClient, world: World, plan: SupplierPlan) -> None:
        patch: dict[str, Any] = {"contact_email": f"kontakt{plan.index}@example.se"}
        if plan.raise_trl_to is not None:
            patch["capabilities"] = {"trl": plan.raise_trl_to}
        await self._send(
            http,
            world,
            "PATCH",
            "suppliers",
            f"/v1/suppliers/{world.suppliers[plan.index]}",
            patch,
            self.operator,
            (200,),
        )
        world.events += 1

    async def _lookup(self, query: str, *args: Any) -> str | None:
        try:
            conn = await asyncpg.connect(self.database_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        try:
            value: str | None = await conn.fetchval(query, *args)
            return value
        except (OSError, asyncpg.PostgresError):
            return None
        finally:
            await conn.close()

    async def run(self, world: World, plan: Plan) -> None:
        """Needs first, then registrations with the closes and updates woven in."""
        limits = httpx.Limits(
            max_connections=self.concurrency * 2, max_keepalive_connections=self.concurrency
        )
        async with httpx.AsyncClient(timeout=15, limits=limits) as http:
            await self.setup(http, world)
            await self._gather([lambda n=n: self.publish_need(http, world, n) for n in plan.needs])
            registered = {s.index: asyncio.Event() for s in plan.suppliers}
            closing = sorted((n for n in plan.needs if n.close_at is not None), key=lambda n: n.close_at or 0)
            ops: list[Callable[[], Awaitable[None]]] = []

            async def register(s: SupplierPlan) -> None:
                self.sent += 1
                if self.progress is not None:
                    await self.progress(self.sent)
                await self.register(http, world, s)
                registered[s.index].set()

            async def update(s: SupplierPlan) -> None:
                await registered[s.index].wait()
                await self.update(http, world, s)

            for s in plan.suppliers:
                while closing and (closing[0].close_at or 0) <= s.index:
                    need = closing.pop(0)
                    ops.append(lambda n=need: self.close_need(http, world, n))
                ops.append(lambda s=s: register(s))
                if s.index >= plan.update_lag:
                    ops.append(lambda u=plan.suppliers[s.index - plan.update_lag]: update(u))
            ops += [lambda u=u: update(u) for u in plan.suppliers[len(plan.suppliers) - plan.update_lag :]]
            ops += [lambda n=n: self.close_need(http, world, n) for n in closing]
            await self._gather(ops)

    async def _gather(self, ops: list[Callable[[], Awaitable[None]]]) -> None:
        """Run `ops` in order with at most `concurrency` in flight."""
        queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        for op in ops:
            queue.put_nowait(op)

        async def worker() -> None:
            while not queue.empty():
                op = queue.get_nowait()
                await op()

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
