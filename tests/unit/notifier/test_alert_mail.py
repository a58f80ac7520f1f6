"""The alert e-mail a person acts on: laid out in HTML and plain text, every word in the
recipient's language, regions by name, links into the forum, and nothing unescaped."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from services.contracts.events import DialogueState, ExplanationFacts, MatchExplanation, SharedCpv
from services.contracts.nuts import all_nuts, region_name
from services.contracts.vocab import Language
from services.notifier import mail, render
from services.notifier.render import MatchView

FORUM = "https://forum.innomatch.se/"
UNSUBSCRIBE = "https://innomatch.se/v1/unsubscribe?token=x"

EXPLANATION = MatchExplanation(
    components={"semantic": 0.41, "cpv": 0.05, "focus_area": 0.2, "supplier_type": 0.05},
    shared_cpv=[SharedCpv(code="31158100", label_sv="Batteriladdare", label_en="Battery chargers")],
    matched_terms=["elbussar", "laddning"],
    region_verdict="serves SE23, the need is in SE232",
    trl_verdict="TRL 7 meets the required 6",
    semantic_verdict="close in meaning (0.63; cosine 0.812)",
    facts=ExplanationFacts(
        supplier_regions=["SE23"],
        need_regions=["SE232"],
        regions_overlap=True,
        supplier_trl=7,
        required_trl=6,
        semantic_closeness=0.63,
    ),
)
VIEW = MatchView(
    match_id="m1",
    version=1,
    score=0.82,
    status="active",
    need_id="n1",
    need_title="Laddinfrastruktur för elbussar",
    supplier_id="s1",
    supplier_name="Laddbolaget AB",
    explanation=EXPLANATION,
    need_groups=("Västtrafikgruppen", "Region Halland"),
    need_regions=("SE232", "SE231"),
    need_authority_levels=("regional", "local"),
    supplier_size="small",
    supplier_company_type="industrial",
    supplier_types=("industrial", "sme", "startup"),
    supplier_contact="info@laddbolaget.se",
)
# What the matcher's English verdicts and the old mails said; none of it in a Swedish mail.
ENGLISH = [
    "serves",
    "the need is in",
    "meets",
    "required",
    "is below",
    "in meaning",
    "Maturity",
    "Shared CPV",
    "Words in common",
    "score comes from",
    "Supplier",
    "Buyer group",
    "shortlist",
    "Unsubscribe",
    "focus area",
    "semantic",
]


def alert(view: MatchView, language: Language, recipient: str = "buyer_group:g1") -> dict[str, object]:
    return render.alert_body(
        alert_id="a1",
        thread_id="t1",
        recipient=recipient,
        view=view,
        language=language,
        created_at="now",
        forum_url=FORUM,
    )


def visible(html: str) -> str:
    """The words a reader sees in the HTML part: no tags, no attribute values."""
    return re.sub(r"<[^>]+>", " ", html)


def words(text: str) -> str:
    """The text without its web addresses (whose paths are the forum's, in English)."""
    return re.sub(r"https?://\S+", "", text)


def test_a_swedish_alert_mail_has_no_english_verdict_and_names_the_regions() -> None:
    m = render.mail(alert(VIEW, Language.sv), Language.sv, UNSUBSCRIBE, FORUM)
    for part in (words(m.text), visible(m.html)):
        for word in ENGLISH:
            assert word not in part, word
        assert not re.search(r"\bSE\d*\b", part)  # no NUTS code
        assert "Region: leverantören verkar i Västsverige, behovet gäller Västra Götalands län" in part
        assert "Mognadsgrad: TRL 7 når upp till kravet TRL 6" in part
        assert "ligger nära varandra i betydelse (0,63)" in part
        assert "Gemensamma CPV-koder: 31158100 Batteriladdare" in part
        assert "Poängen kommer från: likhet i betydelse 0,41, fokusområde 0,20" in part
        assert "Västra Götalands län och Hallands län" in part  # the need's regions
        assert "Västtrafikgruppen, Region Halland (regional och kommunal nivå)" in part
        assert "Litet företag, industriföretag, ungt företag (start-up)" in part
        assert "info@laddbolaget.se" in part
    assert '<html lang="sv">' in m.html and "sans-serif" in m.html
    assert "<li" in m.html  # the reasons as a list
    assert "\n  - Gemensamma ord: elbussar, laddning\n" in m.text


def test_an_english_alert_mail_says_the_same_in_english() -> None:
    m = render.mail(alert(VIEW, Language.en), Language.en, UNSUBSCRIBE, FORUM)
    for part in (m.text, visible(m.html)):
        assert "Region: the supplier serves West Sweden, the need is in Västra Götaland County" in part
        assert "Maturity: TRL 7 meets the required TRL 6" in part
        assert "are close in meaning (0.63)" in part
        assert "Small company, industrial company, young company (start-up)" in part
        assert "Västra Götaland County and Halland County" in part
        for word in ("Leverantör", "behovet", "Mognadsgrad", "Gemensamma", "kommunal"):
            assert word not in part, word
    assert '<html lang="en">' in m.html


def test_the_buttons_and_the_webhook_links_lead_into_the_forum() -> None:
    body = alert(VIEW, Language.sv)
    links = {
        "need": "https://forum.innomatch.se/needs/n1",
        "shortlist": "https://forum.innomatch.se/needs/n1/shortlist",
        "supplier": "https://forum.innomatch.se/suppliers/s1",
        "why": "https://forum.innomatch.se/needs/n1/matches/s1",
    }
    assert body["links"] == links
    m = render.mail(body, Language.sv, UNSUBSCRIBE, "https://elsewhere")
    for key in ("shortlist", "supplier", "why"):
        assert f'href="{links[key]}"' in m.html and links[key] in m.text
    assert "Behovets topplista: https://forum.innomatch.se/needs/n1/shortlist" in m.text
    # A supplier is shown the need rather than the group's shortlist.
    to_supplier = render.mail(alert(VIEW, Language.sv, "supplier:s1"), Language.sv, UNSUBSCRIBE, FORUM)
    assert f'href="{links["need"]}"' in to_supplier.html and links["shortlist"] not in to_supplier.html
    # A body frozen before it had links gets them from the forum URL of the sender.
    old = alert(VIEW, Language.sv)
    del old["links"]
    again = render.mail(old, Language.sv, UNSUBSCRIBE, "https://forum.example/")
    assert 'href="https://forum.example/needs/n1/matches/s1"' in again.html


def test_both_parts_go_in_one_multipart_alternative_message() -> None:
    m = render.mail(alert(VIEW, Language.sv), Language.sv, UNSUBSCRIBE, FORUM)
    msg = mail.message(m, sender="a@innomatch.se", to="b@kommun.se", delivery_id="a1.1", unsubscribe_url="u")
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in parsed.iter_parts()}  # type: ignore[attr-defined]
    assert set(parts) == {"text/plain", "text/html"}
    assert "Mognadsgrad" in parts["text/plain"] and "Mognadsgrad" in parts["text/html"]


def test_what_a_buyer_or_supplier_wrote_is_escaped_in_html_and_kept_in_text() -> None:
    hostile = dataclasses.replace(
        VIEW,
        need_title='<script>alert("x")</script>',
        supplier_name="Bygg & <b>Co</b>",
        need_groups=('"><img src=x onerror=alert(1)>',),
        explanation=EXPLANATION.model_copy(update={"matched_terms": ["<i>ord</i>"]}),
    )
    m = render.mail(alert(hostile, Language.sv), Language.sv, UNSUBSCRIBE + "&a=<b>", FORUM)
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html
    assert "<b>Co</b>" not in m.html and "Bygg &amp; &lt;b&gt;Co&lt;/b&gt;" in m.html
    assert "<img" not in m.html and "<i>" not in m.html
    assert 'href="https://innomatch.se/v1/unsubscribe?token=x&amp;a=&lt;b&gt;"' in m.html
    assert '<script>alert("x")</script>' in m.text and "Bygg & <b>Co</b>" in m.text


def test_an_explanation_without_facts_says_no_english_verdict_either() -> None:
    old = dataclasses.replace(VIEW, explanation=EXPLANATION.model_copy(update={"facts": None}))
    sv = render.explain(old, Language.sv)
    assert "serves" not in sv and "meets" not in sv and "SE23" not in sv
    assert "Region: leverantören verkar där behovet finns (Västra Götalands län och Hallands län)." in sv
    assert "Mognadsgrad: når upp till behovets krav." in sv
    en = render.explain(old, Language.en)
    assert "Region: the supplier serves the need's region (Västra Götaland County and Halland County)." in en
    withdrawn = render.explain(dataclasses.replace(old, status="withdrawn"), Language.sv)
    assert "Region" not in withdrawn and "Mognadsgrad" not in withdrawn


def test_regions_that_do_not_overlap_and_a_trl_below_the_requirement() -> None:
    facts = ExplanationFacts(
        supplier_regions=["SE110", "SE121"],
        need_regions=["SE332"],
        regions_overlap=False,
        supplier_trl=4,
        required_trl=6,
    )
    view = dataclasses.replace(VIEW, explanation=EXPLANATION.model_copy(update={"facts": facts}))
    sv = render.reasons(view.explanation, Language.sv)
    served = "Region: leverantören verkar i Stockholms län och Uppsala län"
    assert f"{served}, behovet gäller Norrbottens län; de överlappar inte" in sv
    assert "Mognadsgrad: TRL 4 är under kravet TRL 6" in sv
    assert not any("betydelse (" in r for r in sv)  # no closeness known
    en = render.reasons(view.explanation, Language.en)
    assert "Maturity: TRL 4 is below the required TRL 6" in en


def test_an_erased_suppliers_contact_leaves_the_stored_body() -> None:
    body = alert(VIEW, Language.sv)
    assert render.without_supplier(body, "s1") is body
    supplier = body["supplier"]
    assert isinstance(supplier, dict) and supplier["contact_email"] is None and supplier["name"] is None
    assert "info@laddbolaget.se" not in render.mail(body, Language.sv, UNSUBSCRIBE, FORUM).text


@pytest.mark.parametrize("code", [r.code for r in all_nuts()])
def test_every_region_has_a_name_in_both_languages(code: str) -> None:
    assert region_name(code, "sv") != code and region_name(code, "en") != code


def test_region_names_of_lan_and_kommun() -> None:
    assert region_name("SE232") == "Västra Götalands län"
    assert region_name("se232", "en") == "Västra Götaland County"
    assert region_name("SE110", "en") == "Stockholm County"
    assert region_name("SE") == "Sverige" and region_name("SE", "en") == "Sweden"
    assert region_name("SE23") == "Västsverige" and region_name("SE23", "en") == "West Sweden"
    assert region_name("1480") == "Göteborgs kommun" and region_name("1480", "en") == "Göteborg Municipality"
    assert region_name("14") == "Västra Götalands län"
    assert region_name("XX9") == "XX9"


def test_a_digest_mail_lays_out_each_alert_with_its_own_links() -> None:
    other = dataclasses.replace(VIEW, match_id="m2", supplier_id="s2", supplier_name="Andra AB", score=0.61)
    body = render.digest_body(
        digest_id="d1",
        recipient="buyer_group:g1",
        period="daily:2026-12-03",
        alerts=[alert(VIEW, Language.sv), alert(other, Language.sv)],
        suppressed=3,
        created_at="now",
    )
    m = render.mail(body, Language.sv, UNSUBSCRIBE, FORUM)
    assert m.subject == "Innomatch: 2 nya matchningar"
    assert m.text.startswith("Dagens och veckans matchningar: (3 till visas i inkorgen)")
    for supplier in ("s1", "s2"):
        assert f'href="https://forum.innomatch.se/needs/n1/matches/{supplier}"' in m.html
        assert f"https://forum.innomatch.se/suppliers/{supplier}" in m.text
    assert "Leverantör: Andra AB" in m.text and "Poäng: 0,61 av 1" in m.text


def test_an_invitation_mail_links_to_the_need_in_the_recipients_language() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    dialogue = DialogueState(
        id="d1",
        need_id="n1",
        buyer_group_ids=["g1"],
        title="Snabbladdning <vid depåer>",
        agenda="",
        open_to_all=False,
        closes_at=now,
        status="open",
        version=1,
        opened_at=now,
        updated_at=now,
    )
    payload = render.notice_payload(
        alert_id="a",
        thread_id="t",
        recipient="supplier:s1",
        body=render.dialogue_notice_body("invitation", dialogue, None),
        need_title="Elbussar",
        created_at="now",
        forum_url=FORUM,
    )
    sv = render.mail(payload, Language.sv, UNSUBSCRIBE, FORUM)
    assert sv.subject == "Inbjudan till marknadsdialog: Snabbladdning <vid depåer>"
    assert "Du är inbjuden till marknadsdialogen ”Snabbladdning <vid depåer>”" in sv.text
    assert "Behovet i forumet: https://forum.innomatch.se/needs/n1" in sv.text
    assert "&lt;vid depåer&gt;" in sv.html and "<vid" not in sv.html
    en = render.mail(payload, Language.en, UNSUBSCRIBE, FORUM)
    assert "The need in the forum" in en.html and "You are invited" in en.text
