"""The alert policy, free of I/O: who gets what over which channel, when to retry, when a
digest is due and what its budget keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from services.contracts.events import AlertSettings
from services.contracts.vocab import AlertMode

Channel = Literal["webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email")


class DeliveryState(StrEnum):
    """The state of a push delivery row (`deliveries.state`, see migrations/002_alerts.sql);
    the values are what the database stores."""

    WAITING = "waiting"  # the recipient's settings are not known yet
    QUEUED = "queued"  # due at next_attempt_at, claimed by the worker
    DIGEST = "digest"  # held for the recipient's next digest
    IN_DIGEST = "in_digest"  # carried by a digest delivery (carried_by)
    IN_BATCH = "in_batch"  # carried by a batch delivery (carried_by)
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"


class DeliveryKind(StrEnum):
    """What a delivery row sends (`deliveries.kind`)."""

    ALERT = "alert"  # one match alert
    BATCH = "batch"  # instant alerts due together for one recipient and channel
    DIGEST = "digest"  # a daily or weekly digest
    NOTICE = "notice"  # a market dialogue notice (an invitation, an answer), its body frozen when made


# Rows not yet tried: a newer match version or a withdrawal may still change them.
OPEN_STATES = (
    DeliveryState.WAITING,
    DeliveryState.QUEUED,
    DeliveryState.DIGEST,
    DeliveryState.SUPPRESSED,
    DeliveryState.SKIPPED,
)


@dataclass(frozen=True)
class Recipient:
    """What the notifier knows of a recipient, from the suppliers and buyer-groups events."""

    principal: str
    alerts: AlertSettings = field(default_factory=AlertSettings)
    name: str = ""
    webhook_disabled_url: str | None = None
    email_unsubscribed: str | None = None
    supplier_types: tuple[str, ...] = ()  # of a supplier, for the alerted-suppliers metric

    def configured(self, channel: Channel, *, smtp: bool) -> bool:
        if channel == "webhook":
            return self.alerts.webhook_url is not None and self.alerts.webhook_secret is not None
        return smtp and self.alerts.email is not None

    def turned_off(self, channel: Channel) -> bool:
        """The recipient's side turned the channel off (410 Gone, an unsubscribe)."""
        if channel == "webhook":
            return (
                self.webhook_disabled_url is not None and self.webhook_disabled_url == self.alerts.webhook_url
            )
        return self.email_unsubscribed is not None and self.email_unsubscribed == self.alerts.email


@dataclass(frozen=True)
class Route:
    state: DeliveryState
    reason: str | None = None


def route(
    recipient: Recipient | None, channel: Channel, score: float, *, active: bool, smtp: bool
) -> Route | None:
    """Where a match alert over `channel` goes; None when the channel is not set up at all.

    Unknown recipients wait: events of different topics arrive in any order, and the alert
    is decided once the recipient's settings arrive.
    """
    if not active:
        return Route(DeliveryState.SKIPPED, "withdrawn")
    if recipient is None:
        return Route(DeliveryState.WAITING)
    if not recipient.configured(channel, smtp=smtp):
        return None
    if recipient.turned_off(channel):
        return Route(DeliveryState.SUPPRESSED, "disabled")
    if score < recipient.alerts.min_score:
        return Route(DeliveryState.SUPPRESSED, "min_score")
    if recipient.alerts.mode == AlertMode.instant:
        return Route(DeliveryState.QUEUED)
    return Route(DeliveryState.DIGEST)


def route_notice(recipient: Recipient | None, channel: Channel, *, smtp: bool) -> Route | None:
    """Where a market dialogue notice over `channel` goes; None when the channel is not set up.

    Notices go at once whatever the recipient's mode (a dialogue has a deadline), and no
    min_score applies: every participant hears of every answer.
    """
    if recipient is None:
        return Route(DeliveryState.WAITING)
    if not recipient.configured(channel, smtp=smtp):
        return None
    if recipient.turned_off(channel):
        return Route(DeliveryState.SUPPRESSED, "disabled")
    return Route(DeliveryState.QUEUED)


def retry_delay(attempt: int, *, base_s: float, cap_s: float, jitter: float) -> float:
    """Exponential backoff with jitter after the `attempt`-th failure (1-based).

    `jitter` in [0, 1) spreads retries over the upper half of the window so that receivers
    coming back up are not hit by every sender at once.
    """
    window: float = min(cap_s, base_s * 2.0 ** min(attempt - 1, 40))
    return window * (0.5 + jitter / 2)


def retryable_status(status: int) -> bool:
    """Whether a webhook answer calls for another try (410 Gone turns the webhook off)."""
    return status != 410


@dataclass(frozen=True)
class Schedule:
    """When digests go out: a local time of day, and the weekday of weekly digests."""

    at: time
    weekday: int  # 0 = Monday
    tz: ZoneInfo

    @classmethod
    def parse(cls, at: str, weekday: int, tz: str) -> Schedule:
        hours, minutes = at.split(":")
        return cls(time(int(hours), int(minutes)), weekday, ZoneInfo(tz))

    def _at(self, day: date) -> datetime:
        return datetime.combine(day, self.at, tzinfo=self.tz)

    def last_run(self, mode: AlertMode, now: datetime) -> tuple[str, datetime]:
        """The latest scheduled run at or before `now`: its period key and its time.

        The key names the run, so a digest is made once per (recipient, channel, key): a
        restart after the scheduled time makes the missed one, never a second one.
        """
        today = now.astimezone(self.tz).date()
        if mode == AlertMode.weekly:
            day = today - timedelta(days=(today.weekday() - self.weekday) % 7)
            if self._at(day) > now:
                day -= timedelta(days=7)
            return f"weekly:{day.isoformat()}", self._at(day)
        day = today if self._at(today) <= now else today - timedelta(days=1)
        return f"daily:{day.isoformat()}", self._at(day)


T = TypeVar("T")


@dataclass(frozen=True)
class Due:
    """A claimable delivery row, as the worker's planning sees it."""

    id: str
    principal: str
    channel: str
    score: float
    batchable: bool  # an instant alert not tried yet (retries and digests go as they are)


def plan_sends(due: Sequence[Due], *, batch_max: int, limit: int) -> list[list[Due]]:
    """Group the due rows into at most `limit` sends.

    The instant alerts that are due together for one recipient and channel (typically the
    shortlist of a need just published) go as one send, ranked best first, at most
    `batch_max` to a send; everything else goes alone. Sends keep the order in which their
    first row came due; rows left over wait for the next claim.
    """
    sends: list[list[Due]] = []
    groups: dict[tuple[str, str], list[Due]] = {}
    for row in due:
        if row.batchable and batch_max > 1:
            group = groups.get((row.principal, row.channel))
            if group is None:
                group = groups[(row.principal, row.channel)] = []
                sends.append(group)
            group.append(row)
        else:
            sends.append([row])
    out: list[list[Due]] = []
    for send in sends:
        if len(send) > 1:
            ranked = sorted(send, key=lambda r: (-r.score, r.id))
            out += [ranked[i : i + batch_max] for i in range(0, len(ranked), batch_max)]
        else:
            out.append(send)
    return out[:limit]


def within_budget(ranked: Sequence[T], budget: int) -> tuple[list[T], list[T]]:
    """Split alerts ranked best first into those a digest keeps and those it suppresses."""
    return list(ranked[:budget]), list(ranked[budget:])
