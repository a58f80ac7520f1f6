"""The registration rate limit, on its own and through the app (no database needed: the
limit and the body-size check answer before anything touches it)."""

from __future__ import annotations

import httpx

from services.infra.ratelimit import RateLimiter
from services.infra.settings import Settings
from services.suppliers.app import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_its_rate_and_then_waits() -> None:
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == 20.0  # one token every 20 s at 3 a minute
    assert limiter.acquire("b") == 0.0  # other clients are counted apart
    clock.now += 20
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


def test_idle_clients_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_clients=10)
    for i in range(10):
        limiter.acquire(f"c{i}")
    clock.now += 120
    limiter.acquire("new")
    assert len(limiter._buckets) == 1


def _client(rate: int) -> httpx.AsyncClient:
    app = create_app(Settings(mode="development", registration_rate_per_minute=rate))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://suppliers")


async def test_registration_beyond_the_rate_gets_429_with_retry_after() -> None:
    async with _client(2) as http:
        statuses = [(await http.post("/v1/suppliers", json={})).status_code for _ in range(3)]
        assert statuses == [422, 422, 429]
        refused = await http.post("/v1/suppliers", json={})
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"


async def test_a_body_over_64_kib_gets_413() -> None:
    big = {"name": "x" * (64 * 1024)}
    async with _client(0) as http:
        declared = await http.post("/v1/suppliers", json=big)

        async def chunks():  # no Content-Length: the limit counts what arrives
            for _ in range(70):
                yield b"x" * 1024

        streamed = await http.post("/v1/suppliers", content=chunks())
        small = await http.post("/v1/suppliers", content=b"{not json")
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"
    assert streamed.status_code == 413
    assert small.status_code == 422
