"""Matching by meaning through the running services: a need and a supplier that share no
word, no language and no CPV branch meet, the explanation names the closest sentence, and a
text is embedded once per version."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from tests.e2e.test_matcher import OPERATOR, World, bearer, until
from tests.e2e.test_matcher import world as world  # the fixture

pytestmark = pytest.mark.e2e


def _embedded(metrics: str, kind: str) -> float:
    """Texts of `kind` this matcher instance embedded, by the embedder group or by itself."""
    prefix = "innomatch_matcher_texts_embedded_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(prefix) and f'kind="{kind}"' in line
    )


async def _metrics(world: World) -> str:
    got = await world.http.get(f"{world.urls['matcher']}/metrics")
    assert got.status_code == 200
    return got.text


async def test_a_need_meets_a_supplier_by_meaning_across_language_and_cpv_branch(world: World) -> None:
    # A place of its own: no other test's supplier serves this kommun only.
    region = "SE332"
    fit = await world.supplier(
        cpv_codes=["48180000"],  # medical software, another branch than the need's IT services
        keywords=["clinical decision support", "emergency department"],
        description=(
            "We build clinical decision support for emergency medicine. Our software estimates "
            "each waiting patient's risk of deterioration from vital signs and lab results, and "
            "shows the care team who should be seen first and why."
        ),
        focus_areas=["health_care"],
        regions=[region],
        trl=8,
    )
    unrelated = await world.supplier(
        cpv_codes=["90620000"],
        keywords=["snow clearing"],
        description="We plough snow and grit icy streets for municipalities in northern Sweden.",
        focus_areas=["transport"],
        regions=[region],
        trl=9,
    )
    group = await world.group()
    published = await world.need(
        group,
        # A fixed text: its vector, and so the semantic component below, is the same every run.
        title="AI-stöd för prioritering på akutmottagningen",
        description=(
            "Regionen vill pröva ett beslutsstöd som hjälper sjuksköterskor att prioritera "
            "patienter i väntrummet på akuten utifrån vitalparametrar och provsvar."
        ),
        cpv_codes=["72000000"],
        focus_area="health_care",
        regions=[region],
        min_trl=6,
    )

    async def ranked() -> list[dict[str, Any]] | None:
        found = await world.matches(published["id"])
        return found if any(m["supplier_id"] == fit["id"] for m in found) else None

    matches = await until(ranked, timeout=60)
    ids = [m["supplier_id"] for m in matches]
    assert unrelated["id"] not in ids or ids.index(fit["id"]) < ids.index(unrelated["id"])
    explanation = next(m for m in matches if m["supplier_id"] == fit["id"])["match"]["explanation"]
    assert explanation["components"]["semantic"] > 0.2, explanation
    assert explanation["semantic_verdict"].endswith(")") and "in meaning" in explanation["semantic_verdict"]
    assert explanation["closest_passage"] in {
        "We build clinical decision support for emergency medicine.",
        "Our software estimates each waiting patient's risk of deterioration from vital signs and "
        "lab results, and shows the care team who should be seen first and why.",
        "clinical decision support, emergency department",
    }
    pair = await world.http.get(
        f"{world.urls['matcher']}/v1/needs/{published['id']}/matches/{fit['id']}", headers=OPERATOR
    )
    assert pair.status_code == 200 and pair.json()["is_match"] is True
    assert pair.json()["explanation"]["closest_passage"] == explanation["closest_passage"]


async def test_a_text_is_embedded_once_per_version(world: World) -> None:
    async def embedded(count: float) -> bool:
        return _embedded(await _metrics(world), "supplier") >= count

    before = _embedded(await _metrics(world), "supplier")
    supplier = await world.supplier(
        description=f"Vi bygger laddstationer för elbussar {secrets.token_hex(3)}.", regions=["SE"]
    )
    await until(lambda: embedded(before + 1), timeout=60)
    # A change that leaves the text as it was (alerts only) embeds nothing; a change of the
    # text embeds it once.
    for change in (
        {"alerts": {"min_score": 0.7}},
        {"capabilities": {"description": f"Vi bygger snabbladdare för tunga fordon {secrets.token_hex(3)}."}},
    ):
        changed = await world.http.patch(
            f"{world.urls['suppliers']}/v1/suppliers/{supplier['id']}",
            json=change,
            headers=bearer(supplier["token"]),
        )
        assert changed.status_code == 200, changed.text
    await until(lambda: embedded(before + 2), timeout=60)
    await asyncio.sleep(1)
    assert _embedded(await _metrics(world), "supplier") == before + 2
