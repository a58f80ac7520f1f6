"""A per-client token bucket: `per_minute` requests a minute, with bursts up to that many."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.infra.errors import InnomatchError


class RateLimited(InnomatchError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """In-process, so each service instance counts on its own; 0 a minute means no limit."""

    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str) -> float:
        """Take one token for `client`: 0.0 when allowed, else the seconds until one is free."""
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.refill_per_s)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.refill_per_s

    def check(self, client: str, what: str = "requests") -> None:
        """Raise RateLimited when `client` has no token left."""
        wait = self.acquire(client)
        if wait > 0:
            raise RateLimited(
                f"too many {what} from this address; try again later",
                retry_after_s=max(1, math.ceil(wait)),
            )

    def _forget_idle(self, now: float) -> None:
        """Keep memory bounded: drop clients whose bucket has filled up again."""
        if len(self._buckets) < self._max_clients:
            return
        full_after = self.capacity / self.refill_per_s
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < full_after}
