"""The delivery loop: woken by NOTIFY or a timer, it makes the digests that are due, keeps
the retry gauge current, claims as many sends as there is room for, and runs each through
the sender and the recorder."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import asyncpg

from services.infra.logs import get_logger
from services.infra.settings import Settings
from services.notifier import digest, policy, repository, webhook
from services.notifier.delivery.claimer import Claim, Claimer
from services.notifier.delivery.recorder import Recorder
from services.notifier.delivery.sender import Sender
from services.notifier.metrics import NotifierMetrics

log = get_logger(__package__ or __name__)


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: NotifierMetrics) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.schedule = policy.Schedule.parse(
            settings.notifier_digest_time, settings.notifier_digest_weekday, settings.notifier_timezone
        )
        self.claimer = Claimer(pool, settings)
        self.recorder = Recorder(pool, settings, metrics)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        limit = max(100, self.settings.notifier_concurrency)
        sender = Sender(self.settings, self.metrics, webhook.WebhookClient(self.settings, limit=limit))
        listener = await self.pool.acquire()
        recording = asyncio.create_task(self.recorder.run())
        next_digest_check = 0.0
        next_gauges = 0.0
        try:
            await listener.add_listener(repository.WAKE_CHANNEL, self._on_notify)
            while True:
                self._wake.clear()
                try:
                    now = time.monotonic()
                    if now >= next_digest_check:
                        next_digest_check = now + self.settings.notifier_digest_check_s
                        await self.run_digests(datetime.now(UTC))
                    if now >= next_gauges:
                        next_gauges = now + 1.0
                        await self._update_gauges()
                    # Claim in batches, not one row each time a send ends: fewer transactions.
                    free = self.settings.notifier_concurrency - len(self._inflight)
                    worth = free >= max(1, self.settings.notifier_concurrency // 4) or not self._inflight
                    claimed = await self.claimer.claim(free) if free > 0 and worth else []
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away: try again shortly
                    log.warning("delivery_loop_failed", error=str(exc))
                    await asyncio.sleep(self.settings.notifier_poll_interval_s)
                    continue
                for claim in claimed:
                    task = asyncio.create_task(self._deliver(sender, claim))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(claimed) == free:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.notifier_poll_interval_s)
        finally:
            for task in [*self._inflight, recording]:
                task.cancel()
            with contextlib.suppress(Exception):
                await listener.remove_listener(repository.WAKE_CHANNEL, self._on_notify)
            await self.pool.release(listener)
            await sender.client.aclose()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _deliver(self, sender: Sender, claim: Claim) -> None:
        try:
            await self.recorder.record(claim, await sender.send(claim))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease runs out and the row is tried again
            log.exception("delivery_crashed", delivery=claim.id, error=str(exc))

    async def run_digests(self, now: datetime) -> list[str]:
        made = await digest.run_due(self.pool, self.schedule, self.settings, now)
        for d in made:
            self.metrics.digest_size.labels(self.metrics.service).observe(d.size)
            if d.suppressed:
                self.metrics.suppress("budget", d.suppressed)
        return [d.id for d in made]

    async def _update_gauges(self) -> None:
        async with self.pool.acquire() as conn:
            counts = await repository.retries_pending(conn)
        for channel in policy.CHANNELS:
            self.metrics.retries_pending.labels(self.metrics.service, channel).set(counts.get(channel, 0))
