"""The web forum in a real headless Chromium against the real services (tansu + PostgreSQL).

Each test uses CPV codes and words no other test or the demo data use (playground equipment,
preservation of historical sites), so what it finds is its own. axe-core checks every page
the browser visits; screenshots of the main pages go to docs/screenshots.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import factories
from tests.conftest import OPERATOR_TOKEN
from tests.e2e.browser import Browser, browser

pytestmark = pytest.mark.e2e

OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
PLAYGROUND = "37535200-9"  # Lekplatsutrustning
PRESERVATION = "92522100-7"  # Konservering av historiska platser


@pytest.fixture(scope="module")
def forum(services: dict[str, str]) -> Iterator[Browser]:
    with browser(services["web"]) as b:
        yield b


@pytest.fixture(autouse=True)
def fresh_session(forum: Browser) -> None:
    """Each test starts signed out, in Swedish."""
    forum.open("/healthz")
    forum.driver.delete_all_cookies()


def _group(services: dict[str, str], email: str) -> dict[str, Any]:
    needs = services["needs"]
    authority = httpx.post(f"{needs}/v1/authorities", headers=OPERATOR, json=factories.authority())
    assert authority.status_code == 201, authority.text
    group = httpx.post(
        f"{needs}/v1/buyer-groups",
        headers=OPERATOR,
        json={
            "name": f"Kulturarvsgruppen {uuid.uuid4().hex[:6]}",
            "focus_area": "community_building",
            "member_authority_ids": [authority.json()["id"]],
            "alerts": {"email": email, "language": "sv", "mode": "daily"},
        },
    )
    assert group.status_code == 201, group.text
    body: dict[str, Any] = group.json()
    return body


def _publish(services: dict[str, str], group: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{services['needs']}/v1/buyer-groups/{group['id']}/needs",
        headers={"Authorization": f"Bearer {group['token']}"},
        json=factories.need(**fields),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _sign_in_by_link(forum: Browser, kind: str, ident: str, email: str) -> str:
    """Ask for a link on the sign-in page; return the link the dev outbox shows."""
    forum.visit_checked("/sign-in")
    if kind == "buyer_group":
        forum.find("#kind-group").click()
    forum.fill("id", ident)
    forum.fill("email", email)
    forum.submit("form[action='/sign-in'] button[type=submit]")
    assert "inloggningslänk" in forum.text()
    forum.check_accessibility()
    forum.visit_checked("/dev/mail")
    links = re.findall(r"https?://\S+/sign-in/[A-Za-z0-9_-]{43}", forum.driver.page_source)
    assert links, "no sign-in link in the outbox"
    return str(links[0])


def test_open_needs_are_listed_in_swedish_and_a_need_page_shows_its_facts(
    forum: Browser, services: dict[str, str]
) -> None:
    word = f"gungställning{uuid.uuid4().hex[:6]}"
    group = _group(services, "lekplats@example.se")
    need = _publish(
        services,
        group,
        title=f"Tillgängliga lekplatser med {word}",
        description=f"Vi söker lekplatsutrustning, {word}, som barn med funktionsnedsättning kan använda.",
        cpv_codes=[PLAYGROUND],
        regions=["SE11"],
        focus_area="community_building",
    )
    forum.visit_checked("/")
    assert forum.html_lang() == "sv"
    forum.fill("q", word)
    forum.submit("form.filters button[type=submit]")
    assert need["title"] in forum.text()
    forum.check_accessibility()
    forum.screenshot("needs")

    forum.follow(f"a[href='/needs/{need['id']}']")
    page = forum.text()
    assert "37535200-9 Lekplatsutrustning" in page
    assert "Stockholm" in page  # the region by name, not code
    assert group["name"] in page
    assert "TRL 6" in page
    forum.check_accessibility()
    forum.screenshot("need")

    forum.follow("a[hreflang='en']")
    assert forum.html_lang() == "en"
    assert "Playground equipment" in forum.text()
    forum.visit_checked("/?cpv=not-a-code")  # the filter's error is shown next to it
    assert forum.find("#cpv").get_attribute("aria-invalid") == "true"
    assert forum.find("#cpv-error").text


def test_a_supplier_registers_through_the_form_and_sees_its_first_match_explained(
    forum: Browser, services: dict[str, str]
) -> None:
    word = f"klätterställning{uuid.uuid4().hex[:6]}"
    group = _group(services, "lek@example.se")
    need = _publish(
        services,
        group,
        title=f"Lekplatser i Stockholm med {word}",
        description=f"Lekplatsutrustning och {word} för förskolor i Stockholms län.",
        cpv_codes=[PLAYGROUND],
        regions=["SE11"],
        min_trl=5,
        preferred_supplier_types=[],
    )

    forum.visit_checked("/suppliers/new")
    # First with an organisation number that fails its check digit: the error is next to it.
    forum.fill("org_number", "556036-0794")
    forum.fill("name", "Lekbolaget AB")
    forum.select("size", "micro")
    forum.select("company_type", "industrial")
    forum.fill("founded_year", "2021")
    forum.fill("contact_email", "hej@lekbolaget.se")
    # The CPV picker: words typed, codes ticked from the live list.
    forum.fill("cpv_query", "lekplats")
    forum.wait_until(lambda: forum.finds(f"[data-cpv-hits] input[value='{PLAYGROUND}']"))
    forum.tick("cpv_codes", PLAYGROUND)
    forum.fill("description", f"Vi bygger lekplatsutrustning och {word} för alla barn.")
    forum.fill("keywords", f"lekplatser, {word}")
    forum.tick("focus_areas", "community_building")
    forum.tick("regions", "SE11")
    forum.select("trl", "7")
    forum.check_accessibility()
    forum.screenshot("register")
    forum.submit("button[value=save]")
    assert forum.find("#org_number").get_attribute("aria-invalid") == "true"
    assert forum.find("#org_number-error").text
    assert forum.find("[role=alert]").text
    assert forum.finds(f"input[name=cpv_codes][value='{PLAYGROUND}']:checked")  # kept as ticked
    forum.check_accessibility()
    forum.screenshot("register-errors")

    forum.fill("org_number", factories.org_number())
    forum.submit("button[value=save]")
    assert forum.path.startswith("/matches")
    supplier_id = forum.path.split("welcome=")[1]
    registered = httpx.get(f"{services['suppliers']}/v1/suppliers/{supplier_id}", headers=OPERATOR)
    assert registered.status_code == 200 and registered.json()["name"] == "Lekbolaget AB"

    forum.reload_until(lambda: need["title"] in forum.text(), timeout=90)
    page = forum.text()
    assert "Gemensamma CPV-områden: 37535200-9 Lekplatsutrustning" in page
    assert "Lösningens mognadsgrad, TRL 7, uppfyller kravet TRL 5." in page
    assert "serves" not in page  # no English verdict in a Swedish page
    forum.check_accessibility()
    forum.screenshot("my-matches")

    forum.visit_checked(f"/needs/{need['id']}/matches/{supplier_id}")
    assert "Leverantören matchar behovet" in forum.text()
    forum.visit_checked("/profile")
    forum.visit_checked(f"/suppliers/{supplier_id}")
    forum.visit_checked("/inbox")


def test_a_buyer_group_signs_in_by_link_publishes_a_need_and_sees_its_shortlist(
    forum: Browser, services: dict[str, str]
) -> None:
    word = f"runsten{uuid.uuid4().hex[:6]}"
    email = f"samordnare-{uuid.uuid4().hex[:6]}@kulturarv.se"
    group = _group(services, email)
    supplier = httpx.post(
        f"{services['suppliers']}/v1/suppliers",
        json=factories.registration(
            name="Stenvårdarna AB",
            contact_email="info@stenvardarna.se",
            capabilities={
                "cpv_codes": [PRESERVATION],
                "focus_areas": ["community_building"],
                "keywords": [word, "konservering"],
                "description": f"Vi konserverar historiska platser, {word} och fornlämningar.",
                "regions": ["SE12"],
                "trl": 8,
            },
        ),
    )
    assert supplier.status_code == 201, supplier.text
    supplier_id = supplier.json()["id"]

    link = _sign_in_by_link(forum, "buyer_group", group["id"], email)
    forum.driver.get(link)
    forum.check_accessibility()
    forum.submit()
    assert forum.path == "/group"
    forum.check_accessibility()

    forum.visit_checked("/needs/new")
    forum.fill("title", f"Vård av {word} i Uppsala län")
    forum.fill("description", f"Konservering av historiska platser: {word} och fornlämningar.")
    forum.fill("cpv_query", "92522100")
    forum.submit("button[value=search_cpv]")  # the picker without script: the server lists the codes
    forum.tick("cpv_codes", PRESERVATION)
    forum.select("focus_area", "community_building")
    forum.tick("regions", "SE12")
    forum.select("min_trl", "6")
    forum.select("procedure", "market_dialogue")
    forum.driver.execute_script("document.getElementById('respond_by').value = '2099-05-31'")
    forum.check_accessibility()
    forum.screenshot("publish-need")
    forum.submit("button[value=save]")
    assert forum.path.endswith("/shortlist?published=1")
    need_id = forum.path.split("/")[2]

    forum.reload_until(lambda: "Stenvårdarna AB" in forum.text(), timeout=90)
    assert "Gemensamma CPV-områden: 92522100-7 Konservering av historiska platser" in forum.text()
    forum.check_accessibility()
    forum.screenshot("shortlist")

    forum.visit_checked(f"/needs/{need_id}/matches/{supplier_id}")
    assert "Leverantören matchar behovet" in forum.text()
    forum.select("verdict", "contacted")
    forum.submit("form[action$='/verdict'] button[type=submit]")
    forum.reload_until(lambda: "Kontaktad" in forum.text(), timeout=30)
    forum.screenshot("pair")

    # A market dialogue with the best match, from the need's page.
    forum.visit_checked(f"/needs/{need_id}/dialogues/new")
    forum.fill("title", f"Marknadsdialog om {word}")
    forum.fill("agenda", "Behovet, era frågor, nästa steg.")
    forum.driver.execute_script("document.getElementById('closes_at').value = '2099-05-01T16:00'")
    forum.fill("shortlist_top", "1")
    forum.submit()
    assert forum.path.startswith("/dialogues/")
    assert "Stenvårdarna AB" in forum.text()
    forum.check_accessibility()
    forum.visit_checked(f"/needs/{need_id}")
    assert f"Marknadsdialog om {word}" in forum.text()
    forum.visit_checked("/group")

    # The link worked once; a second use (another browser, no session) is refused.
    forum.driver.delete_all_cookies()
    forum.driver.get(link)
    assert "redan använd" in forum.text()
    forum.check_accessibility()
    assert forum.finds("form[action^='/sign-in/']") == []
    with httpx.Client(base_url=services["web"]) as client:
        assert client.get(link.replace(forum.base_url, "")).status_code == 410
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/sign-in").text)
        assert token is not None
        used = client.post(link.replace(forum.base_url, ""), data={"csrf_token": token.group(1)})
        assert used.status_code == 410
        assert client.get("/group").status_code in (303, 307)  # not signed in


def test_a_form_posted_without_its_csrf_token_is_refused(services: dict[str, str]) -> None:
    with httpx.Client(base_url=services["web"]) as client:
        page = client.get("/sign-in")
        assert page.status_code == 200 and "innomatch_sid" in client.cookies
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert token is not None
        form = {"kind": "supplier", "id": "x", "email": "a@example.se"}
        assert client.post("/sign-in", data=form).status_code == 403
        assert client.post("/sign-in", data={**form, "csrf_token": "0" * 64}).status_code == 403
        assert client.post("/suppliers/new", data={"name": "X"}).status_code == 403
        assert client.post("/sign-in", data={**form, "csrf_token": token.group(1)}).status_code == 200
    with httpx.Client(base_url=services["web"]) as other:  # another visitor's token is worthless
        other.get("/")
        assert other.post("/sign-in", data={**form, "csrf_token": token.group(1)}).status_code == 403


def test_the_operator_signs_in_with_the_operator_token_and_sees_the_report(
    forum: Browser, services: dict[str, str]
) -> None:
    forum.visit_checked("/sign-in")
    forum.fill("operator_token", "wrong")
    forum.submit("form[action='/sign-in-operator'] button[type=submit]")
    assert forum.find("#operator_token").get_attribute("aria-invalid") == "true"
    forum.check_accessibility()
    forum.fill("operator_token", OPERATOR_TOKEN)
    forum.submit("form[action='/sign-in-operator'] button[type=submit]")
    assert forum.path == "/operator"
    assert "Innomatch results report" in forum.text()
    forum.check_accessibility()
    forum.screenshot("operator")


def test_the_forums_processes_report_their_requests_together(services: dict[str, str]) -> None:
    """`innomatch serve web` runs two processes by default; /metrics counts what both served."""
    route = 'innomatch_http_requests_total{method="GET",route="/",service="web",status="200"}'

    def served() -> float:
        text = httpx.get(f"{services['web']}/metrics", timeout=30).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(route))

    before = served()
    with httpx.Client(base_url=services["web"], timeout=30) as http:
        for _ in range(40):  # new connections: the kernel hands them to either process
            http.get("/", headers={"Connection": "close"}).raise_for_status()
    assert served() - before == 40
