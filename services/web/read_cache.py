"""What the forum keeps for a moment instead of asking again: the services' answers to reads
(services/web/client.py) and who holds a session (services/web/handlers.py).

Each copy is kept for `keep_s` seconds. Visitors asking for the same thing at once share the
one call in flight. A copy that has just run out (up to `keep_s` past its seconds) is still
served while one call fetches its successor: under load, a page that waited for that call
would wait behind every other request the forum is serving, each time a copy runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReadCache(Generic[K, V]):
    def __init__(self, keep_s: float, max_entries: int = 5_000) -> None:
        self.keep_s = keep_s
        self.max_entries = max_entries
        self._kept: dict[K, tuple[float, V]] = {}
        self._pending: dict[K, asyncio.Future[V]] = {}

    def clear(self) -> None:
        """Forget every copy; a call in flight is not kept when it ends."""
        self._kept.clear()
        self._pending.clear()

    def drop(self, key: K) -> None:
        """Forget the copy of `key`; a call for it in flight is not kept when it ends."""
        self._kept.pop(key, None)
        self._pending.pop(key, None)

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """The kept value of `key`, or `fetch()`'s (called once however many ask at once)."""
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None:
            age = now - kept[0]
            if age < self.keep_s:
                return kept[1]
            if age < 2 * self.keep_s:
                if key not in self._pending:
                    self._start(key, now, fetch)
                return kept[1]
        pending = self._pending.get(key) or self._start(key, now, fetch)
        # shield: one visitor going away must not cancel the call the others wait for
        return await asyncio.shield(pending)

    def _start(self, key: K, now: float, fetch: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        pending: asyncio.Future[V] = asyncio.ensure_future(fetch())
        self._pending[key] = pending
        pending.add_done_callback(lambda done: self._settle(key, now, done))
        return pending

    def _settle(self, key: K, started: float, done: asyncio.Future[V]) -> None:
        if self._pending.get(key) is not done:  # dropped or cleared meanwhile: not kept
            if not done.cancelled():
                done.exception()  # the visitors who waited saw it; nobody else will
            return
        del self._pending[key]
        if done.cancelled() or done.exception() is not None:
            return
        if len(self._kept) >= self.max_entries:
            self._kept.clear()
        self._kept[key] = (started, done.result())
