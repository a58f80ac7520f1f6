"""Open needs as an Open Contracting Data Standard 1.1 release package: the pure mapping.

A need is an early, pre-procurement stage of a contracting process, so each open need is one
release tagged `planning`, its tender in status `planning`. Its ocid is the configured prefix
and the need id; the release id adds the need's version, so a changed need is a new release.

- `planning.budget.amount`: the need's budget in SEK, when it has one.
- `tender.items`: one item per CPV code (`classification.scheme` "CPV", the 8 digits), each
  delivered where the need applies: `deliveryLocation.gazetteer` with scheme "NUTS" and the
  need's NUTS codes (OCDS location extension).
- `parties`, `buyer`, `tender.procuringEntity`: the owning buyer group is the buyer and the
  procuring entity, a co-signing group a buyer too; every authority in these groups is a party
  with the role `buyer`, identified by its organisationsnummer (`SE-ORG`).
- `tender.enquiries` (OCDS enquiries extension): the answered questions of the need's market
  dialogues, `threadID` the dialogue. There is no `author`: askers are anonymous, and this
  module is never given who asked (a `Question`'s `asked_by` is not read).

No I/O here; `handlers.Needs.ocds_package` gathers the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.contracts.cpv import cpv_lookup
from services.contracts.vocab import Procedure
from services.needs.rules import Authority, BuyerGroup, Need, Question

OCDS_VERSION = "1.1"
# The extensions the releases use, as the OCDS extension registry lists their versions.
ENQUIRY_EXTENSION = "https://raw.githubusercontent.com/open-contracting-extensions/ocds_enquiry_extension/v1.1.5/extension.json"
LOCATION_EXTENSION = "https://raw.githubusercontent.com/open-contracting-extensions/ocds_location_extension/v1.1.5/extension.json"
EXTENSIONS = (ENQUIRY_EXTENSION, LOCATION_EXTENSION)

_PROCEDURES = {
    Procedure.market_dialogue: "Market dialogue (marknadsdialog), before a procurement",
    Procedure.innovation_partnership: "Innovation partnership (innovationspartnerskap)",
    Procedure.pre_commercial: "Pre-commercial procurement (förkommersiell upphandling)",
    Procedure.competitive_dialogue: "Competitive dialogue (konkurrenspräglad dialog)",
    Procedure.other: "Other procedure",
}


def ocid(prefix: str, need_id: str) -> str:
    return f"{prefix}-{need_id}"


def _time(at: datetime) -> str:
    return at.isoformat()


def _group_party(group: BuyerGroup, roles: list[str]) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "roles": roles}


def _authority_party(authority: Authority) -> dict[str, Any]:
    return {
        "id": authority.id,
        "name": authority.name,
        "identifier": {
            "scheme": "SE-ORG",
            "id": authority.org_number.replace("-", ""),
            "legalName": authority.name,
        },
        "address": {"region": authority.region, "countryName": "Sweden"},
        "roles": ["buyer"],
    }


def _parties(need: Need, groups: Mapping[str, BuyerGroup]) -> list[dict[str, Any]]:
    parties: list[dict[str, Any]] = []
    authorities: dict[str, Authority] = {}
    for group_id in [need.state.buyer_group_id, *need.state.cosigners]:
        group = groups.get(group_id)
        if group is None:
            continue
        owner = group_id == need.state.buyer_group_id
        parties.append(_group_party(group, ["buyer", "procuringEntity"] if owner else ["buyer"]))
        for member in group.members:
            authorities.setdefault(member.id, member)
    parties.extend(_authority_party(a) for a in sorted(authorities.values(), key=lambda a: (a.name, a.id)))
    return parties


def _items(need: Need) -> list[dict[str, Any]]:
    location = {
        "description": ", ".join(need.state.regions),
        "gazetteer": {"scheme": "NUTS", "identifiers": list(need.state.regions)},
    }
    items = []
    for i, code in enumerate(need.state.cpv_codes, start=1):
        entry = cpv_lookup(code)
        classification: dict[str, Any] = {"scheme": "CPV", "id": code[:8]}
        if entry is not None:
            classification["description"] = entry.label_en
        items.append(
            {
                "id": str(i),
                "description": entry.label_sv if entry is not None else code[:8],
                "classification": classification,
                "deliveryLocation": location,
            }
        )
    return items


def _enquiry(question: Question) -> dict[str, Any]:
    """A question and its answer; deliberately never the asker."""
    assert question.answer is not None and question.answered_at is not None
    return {
        "id": question.id,
        "date": _time(question.asked_at),
        "description": question.question,
        "answer": question.answer,
        "dateAnswered": _time(question.answered_at),
        "threadID": question.dialogue_id,
    }


def release(
    need: Need, groups: Mapping[str, BuyerGroup], answered: Sequence[Question], *, ocid_prefix: str
) -> dict[str, Any]:
    """The need as an OCDS planning release; `answered`: its dialogues' answered questions."""
    state = need.state
    owner = groups.get(state.buyer_group_id)
    tender: dict[str, Any] = {
        "id": state.id,
        "title": state.title,
        "description": state.description,
        "status": "planning",
        "procurementMethodDetails": _PROCEDURES[state.procedure],
        "items": _items(need),
    }
    out: dict[str, Any] = {
        "ocid": ocid(ocid_prefix, state.id),
        "id": f"{state.id}-{state.version}",
        "date": _time(state.updated_at),
        "tag": ["planning"],
        "initiationType": "tender",
        "parties": _parties(need, groups),
    }
    if owner is not None:
        reference = {"id": owner.id, "name": owner.name}
        out["buyer"] = reference
        tender["procuringEntity"] = reference
    if state.budget_sek is not None:
        out["planning"] = {"budget": {"amount": {"amount": state.budget_sek, "currency": "SEK"}}}
    enquiries = [_enquiry(q) for q in answered if q.answer is not None]
    if enquiries:
        tender["enquiries"] = enquiries
    out["tender"] = tender
    return out


def release_package(
    needs: Sequence[Need],
    groups: Mapping[str, BuyerGroup],
    answered: Mapping[str, Sequence[Question]],
    *,
    ocid_prefix: str,
    uri: str,
    publisher: str,
    published_at: datetime,
) -> dict[str, Any]:
    """The needs as one release package; `answered` maps a need id to its answered questions."""
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "extensions": list(EXTENSIONS),
        "publisher": {"name": publisher},
        "publishedDate": _time(published_at),
        "releases": [
            release(n, groups, answered.get(n.state.id, ()), ocid_prefix=ocid_prefix) for n in needs
        ],
    }
