"""The forum's short-lived copies of the services' answers to reads (and of sessions)."""

from __future__ import annotations

import asyncio

import pytest

from services.web.read_cache import ReadCache

Key = tuple[str, str, str, tuple[tuple[str, str], ...]]


def _key(path: str, token: str = "") -> Key:
    return (token, "needs", path, ())


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.release = asyncio.Event()
        self.release.set()

    async def answer(self) -> str:
        self.count += 1
        await self.release.wait()
        return f'{{"call": {self.count}}}'


async def test_a_read_is_kept_for_its_seconds_then_served_while_its_successor_is_fetched() -> None:
    cache, calls = ReadCache[Key, str](keep_s=0.05), Calls()
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 1}'
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 1}'
    await asyncio.sleep(0.06)
    # run out: the old copy at once, the next one fetched behind it
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 1}'
    await asyncio.sleep(0.01)
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 2}'
    assert calls.count == 2


async def test_a_copy_twice_its_seconds_old_is_not_served() -> None:
    cache, calls = ReadCache[Key, str](keep_s=0.03), Calls()
    await cache.get(_key("/v1/needs"), calls.answer)
    await asyncio.sleep(0.07)
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 2}'


async def test_copies_are_kept_per_token_and_path() -> None:
    cache, calls = ReadCache[Key, str](keep_s=60), Calls()
    await cache.get(_key("/v1/needs/a", token="t1"), calls.answer)
    assert await cache.get(_key("/v1/needs/a", token="t2"), calls.answer) == '{"call": 2}'
    assert await cache.get(_key("/v1/needs/b", token="t1"), calls.answer) == '{"call": 3}'
    assert await cache.get(_key("/v1/needs/a", token="t1"), calls.answer) == '{"call": 1}'


async def test_visitors_asking_at_once_share_one_call() -> None:
    cache, calls = ReadCache[Key, str](keep_s=60), Calls()
    calls.release.clear()
    waiting = [asyncio.create_task(cache.get(_key("/v1/needs"), calls.answer)) for _ in range(20)]
    await asyncio.sleep(0.01)
    calls.release.set()
    assert set(await asyncio.gather(*waiting)) == {'{"call": 1}'}
    assert calls.count == 1


async def test_a_visitor_going_away_does_not_cancel_the_shared_call() -> None:
    cache, calls = ReadCache[Key, str](keep_s=60), Calls()
    calls.release.clear()
    leaving = asyncio.create_task(cache.get(_key("/v1/needs"), calls.answer))
    staying = asyncio.create_task(cache.get(_key("/v1/needs"), calls.answer))
    await asyncio.sleep(0.01)
    leaving.cancel()
    calls.release.set()
    assert await staying == '{"call": 1}'


async def test_errors_are_not_kept() -> None:
    cache = ReadCache[Key, str](keep_s=60)
    failures = 0

    async def failing() -> str:
        nonlocal failures
        failures += 1
        raise RuntimeError("down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get(_key("/v1/needs"), failing)
    assert failures == 2


async def test_a_change_drops_the_copies_and_a_read_begun_before_it_is_not_kept() -> None:
    cache, calls = ReadCache[Key, str](keep_s=60), Calls()
    await cache.get(_key("/v1/needs"), calls.answer)
    cache.clear()
    assert await cache.get(_key("/v1/needs"), calls.answer) == '{"call": 2}'
    calls.release.clear()
    before = asyncio.create_task(cache.get(_key("/v1/needs/x"), calls.answer))
    await asyncio.sleep(0.01)
    cache.clear()
    calls.release.set()
    assert await before == '{"call": 3}'  # the visitor who asked still gets its answer
    assert await cache.get(_key("/v1/needs/x"), calls.answer) == '{"call": 4}'


async def test_dropping_a_key_forgets_its_copy_and_its_call_in_flight() -> None:
    cache, calls = ReadCache[Key, str](keep_s=60), Calls()
    await cache.get(_key("/s"), calls.answer)
    cache.drop(_key("/s"))
    assert await cache.get(_key("/s"), calls.answer) == '{"call": 2}'
    cache.drop(_key("/s"))
    calls.release.clear()
    before = asyncio.create_task(cache.get(_key("/s"), calls.answer))
    await asyncio.sleep(0.01)
    cache.drop(_key("/s"))
    calls.release.set()
    assert await before == '{"call": 3}'  # the visitor who asked still gets its answer
    assert await cache.get(_key("/s"), calls.answer) == '{"call": 4}'
