"""Recording outcomes: final states and retries, with an alert.delivered / alert.failed
event in the outbox for every alert told or given up, in one transaction per batch of
outcomes, and only for rows whose lease is still the claim's."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from services.contracts.events import AlertDelivered, AlertFailed, AlertState, new_event
from services.contracts.topics import ALERTS
from services.infra import outbox
from services.infra.logs import get_logger
from services.infra.settings import Settings
from services.notifier import policy, repository
from services.notifier.delivery.claimer import Claim
from services.notifier.delivery.sender import RETRY, Outcome
from services.notifier.metrics import NotifierMetrics
from services.notifier.policy import DeliveryKind, DeliveryState

log = get_logger(__package__ or __name__)

SOURCE = "/innomatch/notifier"
_EVENT_NAMESPACE = uuid.UUID("0b7f3f39-5d0c-4f0e-8a36-2f7c7e1d6a51")


class Recorder:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: NotifierMetrics) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        # Outcomes wait here to be recorded in batches: one transaction for many deliveries.
        self._outcomes: asyncio.Queue[tuple[Claim, Outcome, asyncio.Future[None]]] = asyncio.Queue()

    async def record(self, claim: Claim, outcome: Outcome) -> None:
        """Hand an outcome to `run` and wait until it is recorded (or raise why not)."""
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.put_nowait((claim, outcome, recorded))
        await recorded

    async def run(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            try:
                await self.finish([(claim, outcome) for claim, outcome, _ in batch])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not recorded: the leases run out and the rows are tried again
                log.warning("outcomes_not_recorded", error=str(exc), size=len(batch))
                for _, _, recorded in batch:
                    if not recorded.done():
                        recorded.set_exception(exc)
                continue
            for _, _, recorded in batch:
                if not recorded.done():
                    recorded.set_result(None)

    async def finish(self, batch: Sequence[tuple[Claim, Outcome]]) -> None:
        """Record outcomes in one transaction, with an audit event for each alert told or given up."""
        now = datetime.now(UTC)
        horizon = self.settings.notifier_retry_horizon_s
        retries: list[repository.Retry] = []
        finals: list[tuple[Claim, Outcome, DeliveryState, int]] = []
        for claim, outcome in batch:
            attempts = claim.attempts + (1 if outcome.attempted else 0)
            state = outcome.state
            if state == RETRY and (now - claim.first_attempt_at).total_seconds() >= horizon:
                state = DeliveryState.FAILED
            if isinstance(state, DeliveryState):
                finals.append((claim, outcome, state, attempts))
                continue
            delay = policy.retry_delay(
                attempts,
                base_s=self.settings.notifier_retry_base_s,
                cap_s=self.settings.notifier_retry_max_s,
                jitter=random.random(),
            )
            retries.append(repository.Retry(claim.id, claim.token, attempts, outcome.error, delay))
            log.info("delivery_retry", delivery=claim.id, attempts=attempts, delay_s=round(delay, 2))
        events: list[AlertDelivered | AlertFailed] = []
        told: list[tuple[Claim, DeliveryState, int]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if retries:
                await repository.retry_later(conn, retries)
            if finals:
                recorded = await repository.end(
                    conn,
                    [repository.Ending(c.id, c.token, s, a, o.error) for c, o, s, a in finals],
                )
                for claim, outcome, state, attempts in finals:
                    row = recorded.get(claim.id)
                    if row is None:
                        log.warning("delivery_lease_lost", delivery=claim.id)
                        continue
                    if outcome.disable_webhook:
                        await repository.disable_webhook(conn, claim.principal, outcome.disable_webhook)
                    if state not in (DeliveryState.DELIVERED, DeliveryState.FAILED):
                        continue
                    # The alerts a digest or batch carried take its outcome.
                    members = (
                        [row]
                        if claim.kind in (DeliveryKind.ALERT, DeliveryKind.NOTICE)
                        else await repository.end_carried(conn, claim.id, state)
                    )
                    events += [_audit(claim, m, state, attempts, outcome.error, now) for m in members]
                    told.append((claim, state, len(members)))
            await outbox.append_many(conn, "notifier", ALERTS, events)
        for claim, state, n in told:
            if state == DeliveryState.DELIVERED:
                self.metrics.delivered(claim.channel, n)
                if claim.kind != DeliveryKind.DIGEST and claim.event_time is not None:
                    # A batch counts once per alert it carried, from its earliest match event.
                    latency = max((now - claim.event_time).total_seconds(), 0)
                    for _ in range(n):
                        self.metrics.latency.labels(self.metrics.service, claim.channel).observe(latency)
            else:
                self.metrics.failed(claim.channel, n)
                log.warning("alert_failed", delivery=claim.delivery_key, channel=claim.channel)


def _audit(
    claim: Claim,
    member: repository.Ended,
    state: DeliveryState,
    attempts: int,
    error: str | None,
    now: datetime,
) -> AlertDelivered | AlertFailed:
    assert member.match_id is not None and member.match_version is not None, member.id
    alert = AlertState(
        id=member.id,
        recipient=claim.principal,
        match_id=member.match_id,
        match_version=member.match_version,
        channel="webhook" if claim.channel == "webhook" else "email",
        outcome="delivered" if state == DeliveryState.DELIVERED else "failed",
        attempts=max(attempts, 1),
        error=error[:2000] if error else None,
        at=now,
    )
    # The same id if the outcome is ever recorded twice: consumers drop the repeat.
    event_id = str(uuid.uuid5(_EVENT_NAMESPACE, f"{member.id}/{member.match_version}/{state}"))
    if state == DeliveryState.DELIVERED:
        return new_event(AlertDelivered, source=SOURCE, data=alert, id=event_id, time=now)
    return new_event(AlertFailed, source=SOURCE, data=alert, id=event_id, time=now)
