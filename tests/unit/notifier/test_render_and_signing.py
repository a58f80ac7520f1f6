import dataclasses

import pytest

from services.contracts.events import ExplanationFacts, MatchExplanation, SharedCpv
from services.contracts.vocab import Language
from services.notifier import mail, render, webhook
from services.notifier.render import MatchView

FORUM = "https://forum.innomatch.se"

VIEW = MatchView(
    match_id="m",
    version=1,
    score=0.82,
    status="active",
    need_id="n",
    need_title="Laddinfrastruktur för elbussar",
    supplier_id="s",
    supplier_name="Laddbolaget AB",
    explanation=MatchExplanation(
        components={"cpv": 0.4, "text": 0.2, "focus_area": 0.0},
        shared_cpv=[SharedCpv(code="31158100", label_sv="Batteriladdare", label_en="Battery chargers")],
        matched_terms=["elbussar"],
        region_verdict="serves SE11, the need is in SE11",
        trl_verdict="TRL 7 meets the required 6",
        facts=ExplanationFacts(
            supplier_regions=["SE11"],
            need_regions=["SE11"],
            regions_overlap=True,
            supplier_trl=7,
            required_trl=6,
        ),
    ),
)


def test_explanation_in_swedish_and_english() -> None:
    sv = render.explain(VIEW, Language.sv)
    assert sv.startswith("Laddbolaget AB matchar behovet ”Laddinfrastruktur för elbussar” med poängen 0,82")
    assert "31158100 Batteriladdare" in sv and "elbussar" in sv and "CPV-koder 0,40" in sv
    assert "fokusområde" not in sv  # components that gave nothing are not listed
    en = render.explain(VIEW, Language.en)
    assert "with a score of 0.82" in en and "31158100 Battery chargers" in en and "Maturity: TRL 7" in en


def test_mail_has_both_parts_and_the_unsubscribe_link() -> None:
    body = render.alert_body(
        alert_id="a",
        thread_id="t",
        recipient="supplier:s",
        view=VIEW,
        language=Language.en,
        created_at="now",
        forum_url=FORUM,
    )
    m = render.mail(body, Language.en, "https://innomatch.se/v1/unsubscribe?token=x&y=<z>", FORUM)
    assert m.subject == "New match: Laddinfrastruktur för elbussar"
    assert "https://innomatch.se/v1/unsubscribe?token=x&y=<z>" in m.text
    assert 'href="https://innomatch.se/v1/unsubscribe?token=x&amp;y=&lt;z&gt;"' in m.html
    msg = mail.message(m, sender="a@b.se", to="c@d.se", delivery_id="a.1", unsubscribe_url="https://u")
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["List-Unsubscribe"] == "<https://u>"


def test_a_batch_mail_lists_every_alert_of_one_need_under_its_title() -> None:
    items = [
        render.alert_body(
            alert_id=f"a{i}",
            thread_id=f"t{i}",
            recipient="buyer_group:g",
            view=VIEW,
            language=Language.sv,
            created_at="now",
            forum_url=FORUM,
        )
        for i in range(3)
    ]
    body = render.batch_body(batch_id="b", recipient="buyer_group:g", alerts=items, created_at="now")
    m = render.mail(body, Language.sv, "https://innomatch.se/v1/unsubscribe?token=x", FORUM)
    assert m.subject == "Innomatch: 3 nya matchningar: Laddinfrastruktur för elbussar"
    assert m.text.startswith("Innomatch har hittat 3 matchningar:")
    assert m.text.count("\nLeverantör: Laddbolaget AB\n") == 3 and m.html.count("<h2 ") == 3


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    header = webhook.signature("secret-secret-secret", b'{"a":1}', 1700000000)
    assert header == (
        "t=1700000000,v1="
        + __import__("hmac").new(b"secret-secret-secret", b'1700000000.{"a":1}', "sha256").hexdigest()
    )
    assert webhook.verify("secret-secret-secret", b'{"a":1}', header, now=1700000010)
    assert not webhook.verify("secret-secret-secret", b'{"a":2}', header, now=1700000010)
    assert not webhook.verify("another-secret-xxxx", b'{"a":1}', header, now=1700000010)
    assert not webhook.verify("secret-secret-secret", b'{"a":1}', header, now=1700009999)  # replayed


def test_unsubscribe_tokens_cannot_be_forged() -> None:
    token = mail.unsubscribe_token("k" * 32, "supplier:s", "a@b.se")
    assert mail.read_unsubscribe_token("k" * 32, token) == ("supplier:s", "a@b.se")
    assert mail.read_unsubscribe_token("j" * 32, token) is None
    forged = mail.unsubscribe_token("j" * 32, "supplier:other", "a@b.se")
    assert mail.read_unsubscribe_token("k" * 32, forged.split(".")[0] + "." + token.split(".")[1]) is None
    assert mail.read_unsubscribe_token("k" * 32, "garbage") is None


def test_smtp_url() -> None:
    s = mail.SmtpServer.parse("smtps://user:p%40ss@mail.example.se?starttls=false")
    assert (s.host, s.port, s.tls, s.username, s.password) == ("mail.example.se", 465, True, "user", "p@ss")
    assert mail.SmtpServer.parse("smtp://127.0.0.1:2525?starttls=true").starttls
    with pytest.raises(ValueError):
        mail.SmtpServer.parse("http://x")


def test_a_line_break_in_a_title_cannot_add_a_mail_header() -> None:
    title = "Laddning\r\nBcc: everyone@example.se\nX-Injected: yes"
    view = dataclasses.replace(VIEW, need_title=title)
    body = render.alert_body(
        alert_id="a",
        thread_id="t",
        recipient="g",
        view=view,
        language=Language.sv,
        created_at="now",
        forum_url=FORUM,
    )
    content = render.mail(body, Language.sv, "https://innomatch.se/v1/unsubscribe?token=x", FORUM)
    msg = mail.message(
        content, sender="a@innomatch.se", to="b@kommun.se", delivery_id="d.1", unsubscribe_url="https://x/u"
    )
    headers = msg.as_bytes().split(b"\n\n", 1)[0]  # the body may quote the title as it is
    assert msg["Subject"] == "Ny matchning: Laddning Bcc: everyone@example.se X-Injected: yes"
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert b"\nBcc:" not in headers and b"\nX-Injected:" not in headers


def test_an_erased_suppliers_name_and_quoted_passage_leave_every_stored_body() -> None:
    def body(view: MatchView, language: Language) -> dict[str, object]:
        return render.alert_body(
            alert_id="a",
            thread_id="t",
            recipient="buyer_group:g",
            view=view,
            language=language,
            created_at="now",
            forum_url=FORUM,
        )

    other = dataclasses.replace(VIEW, supplier_id="s-2", supplier_name="Kvar AB")
    quoted = dataclasses.replace(
        VIEW, explanation=VIEW.explanation.model_copy(update={"closest_passage": "Vi bygger laddare."})
    )
    passage_only = body(dataclasses.replace(quoted, supplier_name=None), Language.sv)
    assert render.without_supplier(passage_only, VIEW.supplier_id) is passage_only
    assert passage_only["explanation"]["closest_passage"] is None  # type: ignore[index]
    single = body(VIEW, Language.sv)
    assert render.without_supplier(single, VIEW.supplier_id) is single
    assert single["supplier"]["name"] is None and single["supplier"]["id"] == VIEW.supplier_id
    assert single["summary"] == render.explain(dataclasses.replace(VIEW, supplier_name=None), Language.sv)

    batch = render.batch_body(
        batch_id="b",
        recipient="buyer_group:g",
        alerts=[body(VIEW, Language.en), body(other, Language.en)],
        created_at="now",
    )
    scrubbed = render.without_supplier(batch, VIEW.supplier_id)
    assert scrubbed is not None
    assert VIEW.supplier_name not in str(scrubbed)
    assert f"Supplier {VIEW.supplier_id}" in scrubbed["alerts"][0]["summary"]
    assert scrubbed["alerts"][1]["supplier"]["name"] == "Kvar AB"  # others keep theirs
    assert render.without_supplier(scrubbed, VIEW.supplier_id) is None  # nothing left to take
