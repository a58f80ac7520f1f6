"""The delivery worker: sends what the handlers recorded, at least once, never lost.

A due row is claimed in a short transaction that sets a lease (its next_attempt_at moves to
the end of the lease) and freezes the body on the first try, so every retry sends the same
body under the same Innomatch-Delivery-Id. The send happens outside any transaction; its
outcome is recorded, with the alert.delivered / alert.failed event in the outbox, only if
the lease is still ours. A process killed mid-send leaves the row leased; when the lease
runs out it is due again and sent again under the same delivery id, which receivers use to
drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts.events import AlertDelivered, AlertFailed, AlertState, alert_id, new_event
from services.contracts.topics import ALERTS
from services.contracts.vocab import Language
from services.infra import outbox
from services.infra.logs import get_logger
from services.infra.settings import Settings
from services.notifier import digest, mail, policy, render, repository, webhook
from services.notifier.metrics import NotifierMetrics

log = get_logger(__name__)

SOURCE = "/innomatch/notifier"
_EVENT_NAMESPACE = uuid.UUID("0b7f3f39-5d0c-4f0e-8a36-2f7c7e1d6a51")
_BATCH_NAMESPACE = uuid.UUID("9a4f6c1e-2b7d-4e59-8c3a-5d1e7f0b2a64")
# What claiming needs to know of a due row.
_DUE_COLUMNS = (
    "id, principal, channel, match_id, score, event_time, (kind = 'alert' AND payload IS NULL) AS batchable"
)


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    principal: str
    channel: str
    delivery_key: str
    payload: dict[str, Any]
    attempts: int
    first_attempt_at: datetime
    event_time: datetime | None
    token: uuid.UUID
    recipient: policy.Recipient | None


@dataclass(frozen=True)
class Outcome:
    state: str  # delivered | retry | failed | skipped
    error: str | None = None
    disable_webhook: str | None = None  # the URL that answered 410 Gone
    attempted: bool = True


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: NotifierMetrics) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.smtp = mail.SmtpServer.parse(settings.smtp_url) if settings.smtp_url else None
        self.schedule = policy.Schedule.parse(
            settings.notifier_digest_time, settings.notifier_digest_weekday, settings.notifier_timezone
        )
        self.public_url = (settings.notifier_public_url or settings.url_of("notifier")).rstrip("/")
        self.secret = settings.token_secret.get_secret_value()
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        # Outcomes wait here to be recorded in batches: one transaction for many deliveries.
        self._outcomes: asyncio.Queue[tuple[Claim, Outcome, asyncio.Future[None]]] = asyncio.Queue()
        self._client: webhook.WebhookClient | None = None

    # The loop.

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        limit = max(100, self.settings.notifier_concurrency)
        self._client = webhook.WebhookClient(self.settings, limit=limit)
        listener = await self.pool.acquire()
        recorder = asyncio.create_task(self._record_outcomes())
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
                    claimed = await self.claim(free) if free > 0 and worth else []
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away: try again shortly
                    log.warning("delivery_loop_failed", error=str(exc))
                    await asyncio.sleep(self.settings.notifier_poll_interval_s)
                    continue
                for claim in claimed:
                    task = asyncio.create_task(self._deliver_logged(claim))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(claimed) == free:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.notifier_poll_interval_s)
        finally:
            for task in [*self._inflight, recorder]:
                task.cancel()
            with contextlib.suppress(Exception):
                await listener.remove_listener(repository.WAKE_CHANNEL, self._on_notify)
            await self.pool.release(listener)
            await self._client.aclose()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def run_digests(self, now: datetime) -> list[str]:
        made = await digest.run_due(self.pool, self.schedule, self.settings, now)
        for d in made:
            self.metrics.digest_size.labels(self.metrics.service).observe(d.size)
            if d.suppressed:
                self.metrics.suppress("budget", d.suppressed)
        return [d.id for d in made]

    async def _update_gauges(self) -> None:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT channel, count(*) AS n FROM notifier.deliveries "
                "WHERE state = 'queued' AND attempts > 0 GROUP BY channel"
            )
        counts = {r["channel"]: r["n"] for r in rows}
        for channel in policy.CHANNELS:
            self.metrics.retries_pending.labels(self.metrics.service, channel).set(counts.get(channel, 0))

    # Claiming.

    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to `limit` sends that are due. Instant alerts due together for one
        recipient and channel become one batch send (see `policy.plan_sends`)."""
        token = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await repository.lock_rendering(conn, exclusive=False)
            due = list(
                await conn.fetch(
                    f"SELECT {_DUE_COLUMNS} FROM notifier.deliveries WHERE state = 'queued' "
                    "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                    limit,
                )
            )
            if not due:
                return []
            batch_max = self.settings.notifier_batch_max
            keys = {(r["principal"], r["channel"]) for r in due if r["batchable"]}
            if keys and batch_max > 1:
                # The rest of those recipients' due alerts, so that a shortlist goes whole.
                due += await conn.fetch(
                    f"SELECT {_DUE_COLUMNS} FROM notifier.deliveries WHERE state = 'queued' "
                    "AND kind = 'alert' AND payload IS NULL AND next_attempt_at <= now() "
                    "AND (principal, channel) IN (SELECT * FROM unnest($1::text[], $2::text[])) "
                    "AND NOT (id = ANY($3::text[])) ORDER BY score DESC, id LIMIT $4 FOR UPDATE SKIP LOCKED",
                    [p for p, _ in keys],
                    [c for _, c in keys],
                    [r["id"] for r in due],
                    batch_max * len(keys),
                )
            rows = {r["id"]: r for r in due}
            plan = policy.plan_sends(
                [
                    policy.Due(r["id"], r["principal"], r["channel"], r["score"] or 0.0, r["batchable"])
                    for r in due
                ],
                batch_max=batch_max,
                limit=limit,
            )
            recipients = await repository.recipients(conn, list({r["principal"] for r in due}))
            singles = [send[0].id for send in plan if len(send) == 1]
            batches = [[rows[d.id] for d in send] for send in plan if len(send) > 1]
            leased = await conn.fetch(
                "UPDATE notifier.deliveries d SET lease_token = $2, "
                "next_attempt_at = now() + make_interval(secs => $3), "
                "first_attempt_at = coalesce(d.first_attempt_at, now()) WHERE d.id = ANY($1::text[]) "
                "RETURNING d.id, d.kind, d.principal, d.channel, d.match_id, d.payload::text AS payload, "
                "d.delivery_key, d.attempts, d.first_attempt_at, d.event_time",
                singles,
                token,
                self.settings.notifier_lease_s,
            )
            fresh = [r for r in leased if r["payload"] is None]
            # The matches of every body rendered in this claim, in one query.
            wanted = [r["match_id"] for r in fresh] + [r["match_id"] for batch in batches for r in batch]
            views = await repository.views(conn, wanted) if wanted else {}
            frozen = await self._freeze(conn, fresh, views, recipients) if fresh else {}
            made = await self._make_batches(conn, batches, views, recipients, token) if batches else []
        by_id = {r["id"]: r for r in leased}
        claims = []
        for send in plan:
            if len(send) > 1:
                continue
            r = by_id[send[0].id]
            if r["id"] in frozen:
                payload, key = frozen[r["id"]]
            else:
                payload, key = repository.payload_of(r["payload"]), r["delivery_key"]
            claims.append(
                Claim(
                    id=r["id"],
                    kind=r["kind"],
                    principal=r["principal"],
                    channel=r["channel"],
                    delivery_key=key,
                    payload=payload,
                    attempts=r["attempts"],
                    first_attempt_at=r["first_attempt_at"],
                    event_time=r["event_time"],
                    token=token,
                    recipient=recipients.get(r["principal"]),
                )
            )
        return claims + made

    def _body(
        self, row: Any, view: render.MatchView, recipients: dict[str, policy.Recipient], created: str
    ) -> dict[str, Any]:
        recipient = recipients.get(row["principal"])
        return render.alert_body(
            alert_id=row["id"],
            thread_id=alert_id(row["principal"], view.match_id, "inbox"),
            recipient=row["principal"],
            view=view,
            language=recipient.alerts.language if recipient else Language.sv,
            created_at=created,
        )

    async def _freeze(
        self,
        conn: Any,
        rows: list[Any],
        views: dict[str, render.MatchView],
        recipients: dict[str, policy.Recipient],
    ) -> dict[str, tuple[dict[str, Any], str]]:
        """Render the body of each first try and store it with the delivery id it goes under."""
        created = datetime.now(UTC).isoformat()
        out: dict[str, tuple[dict[str, Any], str]] = {}
        for r in rows:
            view = views[r["match_id"]]
            out[r["id"]] = (self._body(r, view, recipients, created), f"{r['id']}.{view.version}")
        await conn.executemany(
            "UPDATE notifier.deliveries SET payload = $2::jsonb, delivery_key = $3, match_version = $4 "
            "WHERE id = $1",
            [(i, json.dumps(b), k, b["match"]["version"]) for i, (b, k) in out.items()],
        )
        return out

    async def _make_batches(
        self,
        conn: Any,
        batches: list[list[Any]],
        views: dict[str, render.MatchView],
        recipients: dict[str, policy.Recipient],
        token: uuid.UUID,
    ) -> list[Claim]:
        """Record each batch as a delivery of its own, leased and with its body frozen, and
        mark its alerts as carried by it: from here on it is retried like any delivery."""
        created = datetime.now(UTC).isoformat()
        claims: list[Claim] = []
        inserts: list[tuple[Any, ...]] = []
        members: list[tuple[str, str, int]] = []
        for batch in batches:
            principal, channel = batch[0]["principal"], batch[0]["channel"]
            ident = str(uuid.uuid5(_BATCH_NAMESPACE, "/".join(sorted(r["id"] for r in batch))))
            items = [self._body(r, views[r["match_id"]], recipients, created) for r in batch]
            payload = render.batch_body(batch_id=ident, recipient=principal, alerts=items, created_at=created)
            event_time = min((r["event_time"] for r in batch if r["event_time"]), default=None)
            inserts.append((ident, principal, channel, json.dumps(payload), token, event_time))
            members += [(r["id"], ident, views[r["match_id"]].version) for r in batch]
            claims.append(
                Claim(
                    id=ident,
                    kind="batch",
                    principal=principal,
                    channel=channel,
                    delivery_key=ident,
                    payload=payload,
                    attempts=0,
                    first_attempt_at=datetime.now(UTC),
                    event_time=event_time,
                    token=token,
                    recipient=recipients.get(principal),
                )
            )
        await conn.executemany(
            "INSERT INTO notifier.deliveries (id, kind, principal, channel, state, payload, delivery_key, "
            "lease_token, next_attempt_at, first_attempt_at, event_time) "
            "VALUES ($1, 'batch', $2, $3, 'queued', $4::jsonb, $1, $5, now() + make_interval(secs => $7), "
            "now(), $6)",
            [(*row, self.settings.notifier_lease_s) for row in inserts],
        )
        await conn.execute(
            "UPDATE notifier.deliveries d SET state = 'in_batch', carried_by = x.batch, match_version = x.v, "
            "first_attempt_at = now(), next_attempt_at = NULL "
            "FROM unnest($1::text[], $2::text[], $3::int[]) AS x(id, batch, v) WHERE d.id = x.id",
            [m[0] for m in members],
            [m[1] for m in members],
            [m[2] for m in members],
        )
        return claims

    # Sending.

    async def _deliver_logged(self, claim: Claim) -> None:
        try:
            outcome = await self.attempt(claim)
            recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._outcomes.put_nowait((claim, outcome, recorded))
            await recorded
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease runs out and the row is tried again
            log.exception("delivery_crashed", delivery=claim.id, error=str(exc))

    async def attempt(self, claim: Claim) -> Outcome:
        recipient = claim.recipient
        channel: policy.Channel = "webhook" if claim.channel == "webhook" else "email"
        if recipient is None or not recipient.configured(channel, smtp=self.smtp is not None):
            return Outcome("skipped", "not_configured", attempted=False)
        if recipient.turned_off(channel):
            self.metrics.suppress("disabled")
            return Outcome("skipped", "disabled", attempted=False)
        try:
            if channel == "webhook":
                return await self._post(claim, recipient)
            return await self._mail(claim, recipient)
        except Exception as exc:
            # Whatever went wrong (a body that cannot be rendered, a header the mail library
            # refuses, a bug) counts as a failed try: retried until the horizon, then
            # alert.failed with this reason. Never a row claimed again forever, unseen.
            log.warning("delivery_error", delivery=claim.id, channel=claim.channel, error=repr(exc)[:500])
            return Outcome("retry", f"{type(exc).__name__}: {exc}"[:500])

    async def _post(self, claim: Claim, recipient: policy.Recipient) -> Outcome:
        url, secret = recipient.alerts.webhook_url, recipient.alerts.webhook_secret
        assert url is not None and secret is not None
        assert self._client is not None
        body = json.dumps(claim.payload, ensure_ascii=False, separators=(",", ":")).encode()
        answer = await webhook.post(self._client, url, secret, body, claim.delivery_key)
        if answer.ok:
            return Outcome("delivered")
        if answer.refused:
            return Outcome("failed", answer.error)
        if answer.status is not None and not policy.retryable_status(answer.status):
            return Outcome("failed", "410 Gone: the webhook is turned off", disable_webhook=url)
        return Outcome("retry", answer.error)

    async def _mail(self, claim: Claim, recipient: policy.Recipient) -> Outcome:
        assert self.smtp is not None and recipient.alerts.email is not None
        to = recipient.alerts.email
        token = mail.unsubscribe_token(self.secret, claim.principal, to)
        link = f"{self.public_url}/v1/unsubscribe?token={token}"
        content = render.mail(claim.payload, recipient.alerts.language, link)
        msg = mail.message(
            content,
            sender=self.settings.notifier_email_from,
            to=to,
            delivery_id=claim.delivery_key,
            unsubscribe_url=link,
        )
        try:
            await mail.send(self.smtp, msg, self.settings.notifier_smtp_timeout_s)
        except mail.PermanentMailError as exc:
            return Outcome("failed", f"refused by the mail server: {exc}"[:500])
        return Outcome("delivered")

    # Recording outcomes.

    async def _record_outcomes(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 500:
                batch.append(self._outcomes.get_nowait())
            try:
                await self.finish(batch)
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

    async def finish(self, batch: list[tuple[Claim, Outcome, Any]]) -> None:
        """Record outcomes in one transaction, with an audit event for each alert told or given up."""
        now = datetime.now(UTC)
        horizon = self.settings.notifier_retry_horizon_s
        retries: list[tuple[str, uuid.UUID, int, str | None, float]] = []
        finals: list[tuple[Claim, Outcome, str, int]] = []
        for claim, outcome, _ in batch:
            attempts = claim.attempts + (1 if outcome.attempted else 0)
            state = outcome.state
            if state == "retry" and (now - claim.first_attempt_at).total_seconds() >= horizon:
                state = "failed"
            if state == "retry":
                delay = policy.retry_delay(
                    attempts,
                    base_s=self.settings.notifier_retry_base_s,
                    cap_s=self.settings.notifier_retry_max_s,
                    jitter=random.random(),
                )
                retries.append((claim.id, claim.token, attempts, outcome.error, delay))
                log.info("delivery_retry", delivery=claim.id, attempts=attempts, delay_s=round(delay, 2))
            else:
                finals.append((claim, outcome, state, attempts))
        events: list[AlertDelivered | AlertFailed] = []
        told: list[tuple[Claim, str, int]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if retries:
                await conn.executemany(
                    "UPDATE notifier.deliveries SET attempts = $3, reason = $4, lease_token = NULL, "
                    "next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1 AND lease_token = $2",
                    retries,
                )
            if finals:
                done = await conn.fetch(
                    "UPDATE notifier.deliveries d SET state = x.state, attempts = x.attempts, "
                    "reason = x.reason, lease_token = NULL, next_attempt_at = NULL, "
                    "delivered_at = CASE WHEN x.state = 'delivered' THEN now() END "
                    "FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::text[]) "
                    "AS x(id, token, state, attempts, reason) WHERE d.id = x.id AND d.lease_token = x.token "
                    "RETURNING d.id, d.match_id, d.match_version",
                    [c.id for c, _, _, _ in finals],
                    [c.token for c, _, _, _ in finals],
                    [s for _, _, s, _ in finals],
                    [a for _, _, _, a in finals],
                    [o.error for _, o, _, _ in finals],
                )
                recorded = {r["id"]: r for r in done}
                for claim, outcome, state, attempts in finals:
                    row = recorded.get(claim.id)
                    if row is None:
                        log.warning("delivery_lease_lost", delivery=claim.id)
                        continue
                    if outcome.disable_webhook:
                        await repository.disable_webhook(conn, claim.principal, outcome.disable_webhook)
                    if state not in ("delivered", "failed"):
                        continue
                    members = [row] if claim.kind == "alert" else await self._carried(conn, claim, state)
                    events += [self._audit(claim, m, state, attempts, outcome.error, now) for m in members]
                    told.append((claim, state, len(members)))
            await outbox.append_many(conn, "notifier", ALERTS, events)
        for claim, state, n in told:
            if state == "delivered":
                self.metrics.delivered(claim.channel, n)
                if claim.kind != "digest" and claim.event_time is not None:
                    # A batch counts once per alert it carried, from its earliest match event.
                    latency = max((now - claim.event_time).total_seconds(), 0)
                    for _ in range(n):
                        self.metrics.latency.labels(self.metrics.service, claim.channel).observe(latency)
            else:
                self.metrics.failed(claim.channel, n)
                log.warning("alert_failed", delivery=claim.delivery_key, channel=claim.channel)

    @staticmethod
    def _audit(
        claim: Claim, member: Any, state: str, attempts: int, error: str | None, now: datetime
    ) -> AlertDelivered | AlertFailed:
        alert = AlertState(
            id=member["id"],
            recipient=claim.principal,
            match_id=member["match_id"],
            match_version=member["match_version"],
            channel="webhook" if claim.channel == "webhook" else "email",
            outcome="delivered" if state == "delivered" else "failed",
            attempts=max(attempts, 1),
            error=error[:2000] if error else None,
            at=now,
        )
        # The same id if the outcome is ever recorded twice: consumers drop the repeat.
        event_id = str(uuid.uuid5(_EVENT_NAMESPACE, f"{member['id']}/{member['match_version']}/{state}"))
        if state == "delivered":
            return new_event(AlertDelivered, source=SOURCE, data=alert, id=event_id, time=now)
        return new_event(AlertFailed, source=SOURCE, data=alert, id=event_id, time=now)

    @staticmethod
    async def _carried(conn: Any, claim: Claim, state: str) -> list[Any]:
        """The alerts a digest or batch carried take its outcome."""
        return list(
            await conn.fetch(
                "UPDATE notifier.deliveries SET state = $2, "
                "delivered_at = CASE WHEN $2 = 'delivered' THEN now() END "
                "WHERE carried_by = $1 RETURNING id, match_id, match_version",
                claim.id,
                state,
            )
        )
