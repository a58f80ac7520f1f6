"""The OCDS mapping of open needs: releases, parties, items, budget, enquiries without askers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.contracts.events import AlertSettings
from services.contracts.vocab import AuthorityLevel
from services.needs import ocds, rules
from tests.factories import need_state
from tests.ocds_validation import problems, validate

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
ASKER = "supplier-who-asked-7f3a"


def authority(name: str, org_number: str, region: str) -> rules.Authority:
    return rules.Authority(str(uuid.uuid4()), org_number, name, AuthorityLevel.local, region, NOW)


def group(name: str, *members: rules.Authority) -> rules.BuyerGroup:
    return rules.BuyerGroup(str(uuid.uuid4()), name, "transport", AlertSettings(), 1, NOW, NOW, list(members))


STOCKHOLM = authority("Stockholms kommun", "212000-0142", "SE110")
GOTEBORG = authority("Göteborgs kommun", "212000-1355", "SE232")
OWNER = group("Elbussgruppen", STOCKHOLM)
COSIGNER = group("Västsvenska bussar", GOTEBORG, STOCKHOLM)


def the_need(**overrides: object) -> rules.Need:
    state = need_state(
        buyer_group_id=OWNER.id,
        cpv_codes=["31158100", "34144900"],
        regions=["SE11", "SE232"],
        version=3,
        updated_at=NOW,
        **overrides,
    )
    return rules.Need(state, rules.Backing(2, {"local": 2}))


def question(dialogue_id: str, answered: bool = True) -> rules.Question:
    return rules.Question(
        id=str(uuid.uuid4()),
        dialogue_id=dialogue_id,
        asked_by=ASKER,
        question="Kan laddarna delas med taxi?",
        asked_at=NOW,
        answer="Ja, om effekten räcker." if answered else None,
        answered_by=OWNER.id if answered else None,
        answered_at=NOW + timedelta(hours=1) if answered else None,
    )


def package(needs: list[rules.Need], answered: dict[str, list[rules.Question]]) -> dict[str, object]:
    return ocds.release_package(
        needs,
        {OWNER.id: OWNER, COSIGNER.id: COSIGNER},
        answered,
        ocid_prefix="ocds-test01",
        uri="https://innomatch.example/v1/needs.ocds.json",
        publisher="Innomatch",
        published_at=NOW,
    )


def test_a_need_is_a_planning_release_with_cpv_items_nuts_locations_and_a_budget_in_sek() -> None:
    need = the_need(budget_sek=5_000_000)
    release = ocds.release(need, {OWNER.id: OWNER}, [], ocid_prefix="ocds-test01")
    assert release["ocid"] == f"ocds-test01-{need.state.id}"
    assert release["id"] == f"{need.state.id}-3"
    assert release["tag"] == ["planning"] and release["initiationType"] == "tender"
    assert release["planning"] == {"budget": {"amount": {"amount": 5_000_000, "currency": "SEK"}}}
    tender = release["tender"]
    assert tender["status"] == "planning" and tender["title"] == need.state.title
    assert [i["classification"]["scheme"] for i in tender["items"]] == ["CPV", "CPV"]
    assert [i["classification"]["id"] for i in tender["items"]] == ["31158100", "34144900"]
    assert tender["items"][0]["deliveryLocation"]["gazetteer"] == {
        "scheme": "NUTS",
        "identifiers": ["SE11", "SE232"],
    }
    assert "enquiries" not in tender
    assert "planning" not in ocds.release(the_need(budget_sek=None), {}, [], ocid_prefix="x")


def test_the_owning_group_buys_and_procures_cosigners_buy_and_authorities_are_parties_once() -> None:
    need = the_need(cosigners=[COSIGNER.id])
    release = ocds.release(need, {OWNER.id: OWNER, COSIGNER.id: COSIGNER}, [], ocid_prefix="p")
    assert release["buyer"] == {"id": OWNER.id, "name": "Elbussgruppen"}
    assert release["tender"]["procuringEntity"] == release["buyer"]
    roles = {p["id"]: p["roles"] for p in release["parties"]}
    assert roles[OWNER.id] == ["buyer", "procuringEntity"] and roles[COSIGNER.id] == ["buyer"]
    authorities = [p for p in release["parties"] if "identifier" in p]
    assert [a["identifier"] for a in authorities] == [
        {"scheme": "SE-ORG", "id": "2120001355", "legalName": "Göteborgs kommun"},
        {"scheme": "SE-ORG", "id": "2120000142", "legalName": "Stockholms kommun"},
    ]
    assert authorities[1]["address"] == {"region": "SE110", "countryName": "Sweden"}


def test_answered_questions_are_enquiries_threaded_by_dialogue_and_never_name_the_asker() -> None:
    need = the_need()
    dialogue = str(uuid.uuid4())
    answered = question(dialogue)
    release = ocds.release(
        need, {OWNER.id: OWNER}, [answered, question(dialogue, answered=False)], ocid_prefix="p"
    )
    assert release["tender"]["enquiries"] == [
        {
            "id": answered.id,
            "date": NOW.isoformat(),
            "description": "Kan laddarna delas med taxi?",
            "answer": "Ja, om effekten räcker.",
            "dateAnswered": (NOW + timedelta(hours=1)).isoformat(),
            "threadID": dialogue,
        }
    ]
    assert ASKER not in json.dumps(release)


def test_the_package_validates_with_lib_cove_ocds_offline(tmp_path: Path) -> None:
    need = the_need(cosigners=[COSIGNER.id])
    other = the_need(budget_sek=None, procedure="pre_commercial")
    data = package([need, other], {need.state.id: [question(str(uuid.uuid4()))]})
    assert data["extensions"] == list(ocds.EXTENSIONS)
    result = validate(data, tmp_path)
    assert problems(result) == {}
    assert result["version_used"] == "1.1"
    assert len(result["extensions"]["extensions"]) == 2


def test_the_validator_does_find_faults(tmp_path: Path) -> None:
    data = package([the_need()], {})
    release = data["releases"][0]  # type: ignore[index]
    release["tender"]["status"] = "thinking"
    release["tender"]["items"][0]["deliveryLocation"]["gazetteer"]["identifiers"] = "SE11"
    found = problems(validate(data, tmp_path))
    assert "validation_errors" in found or "invalid_closed_codelist_values" in found
    paths = json.dumps(found)
    assert "identifiers" in paths and "thinking" in paths
