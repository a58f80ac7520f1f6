"""Market dialogue notices: routed at once whatever the mode, and rendered without the asker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.contracts.events import AlertSettings, AnsweredQuestion, DialogueState
from services.contracts.vocab import AlertMode, Language
from services.notifier import policy, render
from services.notifier.policy import DeliveryState, Recipient

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
HOOK = {"webhook_url": "https://leverantor.se/hook", "webhook_secret": "s" * 20}


def dialogue() -> DialogueState:
    return DialogueState(
        id="d1",
        need_id="n1",
        buyer_group_ids=["g1"],
        title="Snabbladdning",
        agenda="",
        open_to_all=False,
        closes_at=NOW + timedelta(days=7),
        status="open",
        invited_supplier_ids=["s1", "s2"],
        version=2,
        opened_at=NOW,
        updated_at=NOW,
    )


def test_a_notice_goes_at_once_whatever_the_mode_and_score_and_waits_for_unknown_recipients() -> None:
    weekly = Recipient("supplier:s1", AlertSettings(**HOOK, mode=AlertMode.weekly, min_score=1.0))
    assert policy.route_notice(weekly, "webhook", smtp=False) == policy.Route(DeliveryState.QUEUED)
    assert policy.route_notice(weekly, "email", smtp=True) is None  # no address
    assert policy.route_notice(None, "webhook", smtp=False) == policy.Route(DeliveryState.WAITING)
    gone = Recipient("supplier:s1", AlertSettings(**HOOK), webhook_disabled_url=HOOK["webhook_url"])
    assert policy.route_notice(gone, "webhook", smtp=False) == policy.Route(
        DeliveryState.SUPPRESSED, "disabled"
    )


def test_an_answer_notice_in_each_language() -> None:
    question = AnsweredQuestion(
        id="q1", question="Vilken effekt?", answer="200 kW.", asked_at=NOW, answered_at=NOW
    )
    body = render.dialogue_notice_body("answer", dialogue(), question)
    payload = render.notice_payload(
        alert_id="a1",
        thread_id="t1",
        recipient="supplier:s2",
        body=body,
        need_title="Elbussar",
        created_at="x",
        forum_url="https://forum.innomatch.se/",
    )
    assert payload["type"] == "dialogue_notice" and payload["dialogue"]["need_title"] == "Elbussar"
    assert "s1" not in str(payload)  # neither the asker nor the other participants
    assert payload["links"] == {"need": "https://forum.innomatch.se/needs/n1"}
    sv = render.mail(payload, Language.sv, "https://innomatch/unsubscribe", "https://other")
    en = render.mail(payload, Language.en, "https://innomatch/unsubscribe", "https://other")
    assert sv.subject == "Nytt svar i marknadsdialogen: Snabbladdning"
    assert "Fråga: Vilken effekt?" in sv.text and "Svar: 200 kW." in sv.text
    assert "https://innomatch/unsubscribe" in sv.text
    assert "Behovet i forumet: https://forum.innomatch.se/needs/n1" in sv.text
    assert 'href="https://forum.innomatch.se/needs/n1"' in sv.html and '<html lang="sv">' in sv.html
    assert en.subject == "New answer in the market dialogue: Snabbladdning"
    assert "<strong>Answer:</strong> 200 kW." in en.html and "Answer: 200 kW." in en.text
    assert "Svar" not in en.text and "Answer" not in sv.text


def test_an_invitation_names_the_dialogue_the_need_and_the_deadline() -> None:
    body = render.dialogue_notice_body("invitation", dialogue(), None)
    text = render.dialogue_summary(body, "Elbussar", Language.sv)
    assert text == (
        "Du är inbjuden till marknadsdialogen ”Snabbladdning” om behovet ”Elbussar” "
        "(till 2026-12-10 09:00 UTC)."
    )
