"""The demo's webhook receiver: signature check against a known vector, replays, retries,
and what it prints for an alert."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx

from services.demo.receiver import Receiver, sign, verify_signature
from services.demo.show import format_alert

SECRET = "whsec-demo-0123456789abcdef"
BODY = b'{"type":"alert","alert_id":"a1"}'
T = 1767225600
# Computed independently: printf '1767225600.<body>' | openssl dgst -sha256 -hmac <secret>
KNOWN = "7c82268e6da7654b8a1f98cf3912399d5dece327595f9787b66232d745e1d708"


def test_the_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    assert sign(SECRET, BODY, T) == f"t={T},v1={KNOWN}"
    assert verify_signature(SECRET, BODY, f"t={T},v1={KNOWN}", now=T + 10)


def test_wrong_secret_body_age_or_shape_is_refused() -> None:
    good = f"t={T},v1={KNOWN}"
    assert not verify_signature("another-secret-0123456789", BODY, good, now=T)
    assert not verify_signature(SECRET, BODY + b" ", good, now=T)
    assert not verify_signature(SECRET, BODY, good, now=T + 301)  # a replay, five minutes on
    assert not verify_signature(SECRET, BODY, f"t={T + 1},v1={KNOWN}", now=T)
    for header in (None, "", "v1=" + KNOWN, f"t=soon,v1={KNOWN}", f"t={T}"):
        assert not verify_signature(SECRET, BODY, header, now=T)


def test_the_receiver_shows_each_delivery_once_and_refuses_forgeries() -> None:
    shown: list[tuple[str, object]] = []
    refused: list[str] = []
    receiver = Receiver(
        SECRET, lambda name, body: shown.append((name, body)), lambda name, _: refused.append(name)
    )
    receiver.start()
    try:
        url = receiver.url_for("elbussar")
        body = json.dumps({"type": "alert", "need": {"title": "Laddning"}}).encode()
        headers = {"Innomatch-Signature": sign(SECRET, body, int(time.time())), "Innomatch-Delivery-Id": "d1"}
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        assert httpx.post(url, content=body, headers=headers).status_code == 200  # a retry
        forged = {**headers, "Innomatch-Signature": sign("not-the-secret-at-all", body, int(time.time()))}
        assert httpx.post(url, content=body, headers=forged).status_code == 401
        assert httpx.post(f"{receiver.base_url}/other", content=body, headers=headers).status_code == 404
    finally:
        receiver.stop()
    assert shown == [("elbussar", {"type": "alert", "need": {"title": "Laddning"}})]
    assert refused == ["elbussar"] and receiver.refused == 1


ALERT = {
    "type": "alert",
    "recipient": "buyer_group:g1",
    "event": "match.found",
    "match": {"id": "m1", "score": 0.8123, "need_id": "n1", "supplier_id": "s1"},
    "need": {"id": "n1", "title": "Laddinfrastruktur för elbussar"},
    "supplier": {"id": "s1", "name": "Laddkraft AB"},
    "explanation": {
        "components": {"cpv": 0.5, "text": 0.2, "focus_area": 0.1},
        "shared_cpv": [{"code": "31158100", "label_sv": "Batteriladdare", "label_en": "Battery chargers"}],
        "matched_terms": ["laddstolpar", "elbussar"],
        "region_verdict": "SE11 ligger inom SE1",
        "trl_verdict": "TRL 7 räcker (minst 6)",
    },
    "summary": "Laddkraft AB delar CPV-kod 31158100 och orden laddstolpar, elbussar.",
    "language": "sv",
}
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_an_alert_is_printed_with_the_notifiers_explanation() -> None:
    text = format_alert("buyer group Elbussar", ALERT, now=NOON)
    assert "Alert for buyer group Elbussar (buyer_group:g1): match.found" in text
    assert "Need:         Laddinfrastruktur för elbussar" in text
    assert "Supplier:     Laddkraft AB   (score 0.81)" in text
    assert "Why:          Laddkraft AB delar CPV-kod 31158100 och orden laddstolpar, elbussar." in text
    assert "Shared CPV" not in text  # the summary already says it


def test_without_a_summary_the_explanation_is_spelled_out() -> None:
    text = format_alert("buyer group Elbussar", {**ALERT, "summary": None}, now=NOON)
    assert "Why:" not in text
    assert "Shared CPV:   31158100 Batteriladdare" in text
    assert "Shared terms: laddstolpar, elbussar" in text
    assert "Region:       SE11 ligger inom SE1" in text
    assert "TRL:          TRL 7 räcker (minst 6)" in text
    assert "Score parts:  cpv 0.50, text 0.20, focus_area 0.10" in text


def test_a_long_summary_is_wrapped_under_its_label() -> None:
    text = format_alert("s", {**ALERT, "summary": "ord " * 60}, now=NOON)
    why = text[text.index("Why:") :].splitlines()
    assert len(why) > 1 and all(line.startswith(" " * 16) for line in why[1:])


def test_digests_list_each_alert_and_unknown_bodies_are_shown_as_json() -> None:
    digest = {
        "type": "digest",
        "period": "daily",
        "alerts": [ALERT, {**ALERT, "need": {"title": "Annat behov"}}],
    }
    text = format_alert("s", digest, now=NOON)
    assert "Digest for s: 2 matches (daily)" in text and "Annat behov" in text
    odd = format_alert("s", {"hello": "världen"}, now=NOON)
    assert 'Webhook call for s:\n{\n  "hello": "världen"\n}' in odd
    assert "Webhook call for s" in format_alert("s", [1, 2], now=NOON)


def test_a_batch_lists_each_alert_it_carries() -> None:
    batch = {"type": "batch", "alerts": [ALERT, {**ALERT, "need": {"title": "Annat behov"}}]}
    text = format_alert("s", batch, now=NOON)
    assert "2 alerts for s, best first" in text and "Annat behov" in text
