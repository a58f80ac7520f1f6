from datetime import UTC, datetime

import pytest

from services.contracts.events import AlertSettings
from services.contracts.vocab import AlertMode
from services.notifier import policy
from services.notifier.policy import Recipient, Route, Schedule

HOOK = {"webhook_url": "https://kommun.se/hook", "webhook_secret": "s" * 20}


def recipient(**alerts: object) -> Recipient:
    return Recipient("buyer_group:g", AlertSettings.model_validate({**HOOK, **alerts}))


def test_unknown_recipients_wait_and_withdrawn_matches_are_not_alerted() -> None:
    assert policy.route(None, "webhook", 0.9, active=True, smtp=True) == Route("waiting")
    assert policy.route(recipient(), "webhook", 0.9, active=False, smtp=True) == Route("skipped", "withdrawn")


def test_instant_digest_and_min_score() -> None:
    assert policy.route(recipient(), "webhook", 0.9, active=True, smtp=False) == Route("queued")
    assert policy.route(recipient(mode="daily"), "webhook", 0.9, active=True, smtp=False) == Route("digest")
    assert policy.route(recipient(min_score=0.8), "webhook", 0.79, active=True, smtp=False) == Route(
        "suppressed", "min_score"
    )


def test_channels_not_set_up_get_no_delivery() -> None:
    assert policy.route(recipient(), "email", 0.9, active=True, smtp=True) is None
    with_mail = recipient(email="a@kommun.se")
    assert policy.route(with_mail, "email", 0.9, active=True, smtp=False) is None
    assert policy.route(with_mail, "email", 0.9, active=True, smtp=True) == Route("queued")


def test_a_gone_webhook_or_unsubscribed_address_is_disabled_until_changed() -> None:
    gone = Recipient(
        "supplier:s", AlertSettings.model_validate(HOOK), webhook_disabled_url=HOOK["webhook_url"]
    )
    assert policy.route(gone, "webhook", 0.9, active=True, smtp=False) == Route("suppressed", "disabled")
    moved = Recipient(
        "supplier:s",
        AlertSettings.model_validate({**HOOK, "webhook_url": "https://kommun.se/new"}),
        webhook_disabled_url=HOOK["webhook_url"],
    )
    assert policy.route(moved, "webhook", 0.9, active=True, smtp=False) == Route("queued")
    off = Recipient("supplier:s", AlertSettings(email="a@b.se"), email_unsubscribed="a@b.se")
    assert policy.route(off, "email", 0.9, active=True, smtp=True) == Route("suppressed", "disabled")


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    delays = [policy.retry_delay(n, base_s=2, cap_s=3600, jitter=1.0 - 1e-9) for n in range(1, 6)]
    assert delays == pytest.approx([2, 4, 8, 16, 32])
    assert policy.retry_delay(1, base_s=2, cap_s=3600, jitter=0.0) == 1.0
    assert policy.retry_delay(40, base_s=2, cap_s=3600, jitter=0.999999) == pytest.approx(3600, rel=1e-5)
    assert policy.retryable_status(500) and policy.retryable_status(429) and not policy.retryable_status(410)


STOCKHOLM = Schedule.parse("07:00", 0, "Europe/Stockholm")


def test_daily_period_is_the_last_local_run() -> None:
    # 06:30 UTC on 25 Nov is 07:30 in Stockholm (CET): today's run has passed.
    period, at = STOCKHOLM.last_run(AlertMode.daily, datetime(2026, 11, 25, 6, 30, tzinfo=UTC))
    assert period == "daily:2026-11-25"
    assert at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    # 05:30 UTC is 06:30 local: the last run was yesterday's.
    period, _ = STOCKHOLM.last_run(AlertMode.daily, datetime(2026, 11, 25, 5, 30, tzinfo=UTC))
    assert period == "daily:2026-11-24"


def test_daily_run_follows_summer_time() -> None:
    _, at = STOCKHOLM.last_run(AlertMode.daily, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert at == datetime(2026, 7, 1, 5, 0, tzinfo=UTC)  # 07:00 CEST


def test_weekly_period_starts_on_the_configured_weekday() -> None:
    # Wednesday 25 Nov 2026: the last Monday run was 23 Nov.
    period, at = STOCKHOLM.last_run(AlertMode.weekly, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    assert period == "weekly:2026-11-23"
    assert at == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    # Monday before 07:00 local: still last week's.
    period, _ = STOCKHOLM.last_run(AlertMode.weekly, datetime(2026, 11, 23, 5, 0, tzinfo=UTC))
    assert period == "weekly:2026-11-16"


def test_budget_keeps_the_best_and_cuts_the_rest() -> None:
    kept, cut = policy.within_budget([0.9, 0.8, 0.7], 2)
    assert (kept, cut) == ([0.9, 0.8], [0.7])
    assert policy.within_budget([0.9], 5) == ([0.9], [])


def _due(
    ident: str, principal: str = "buyer_group:g", score: float = 0.5, batchable: bool = True
) -> policy.Due:
    return policy.Due(ident, principal, "webhook", score, batchable)


def test_alerts_due_together_for_one_recipient_go_as_one_send_best_first() -> None:
    due = [_due("a", score=0.6), _due("x", "supplier:s"), _due("b", score=0.9), _due("c", score=0.7)]
    plan = policy.plan_sends(due, batch_max=50, limit=10)
    assert [[d.id for d in send] for send in plan] == [["b", "c", "a"], ["x"]]


def test_batches_are_capped_and_retries_and_digests_go_alone() -> None:
    due = [_due("r", batchable=False), *(_due(f"a{i}", score=i / 10) for i in range(5))]
    plan = policy.plan_sends(due, batch_max=2, limit=10)
    assert [[d.id for d in send] for send in plan] == [["r"], ["a4", "a3"], ["a2", "a1"], ["a0"]]
    assert len(policy.plan_sends(due, batch_max=2, limit=2)) == 2
    # batch_max 1: every alert on its own, in the order it came due.
    assert [send[0].id for send in policy.plan_sends(due, batch_max=1, limit=10)] == [d.id for d in due]
