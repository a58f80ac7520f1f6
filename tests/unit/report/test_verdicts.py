"""The buyers' verdicts exported as a labelled set that the evaluation reads."""

from __future__ import annotations

from services.contracts.events import MatchFound, MatchJudged, NeedPublished, SupplierRegistered
from services.report.aggregate import fold
from services.report.verdicts import labelled_set
from tests.eval.evaluate import _validated
from tests.factories import supplier_state
from tests.unit.report.test_aggregate import DAY2, ev, need, scored


def test_verdicts_become_grades_of_a_set_the_evaluation_loads_without_contact_details() -> None:
    chosen, rejected, unjudged = (
        supplier_state(alerts={"webhook_url": "https://hook.example.se/x", "webhook_secret": "s" * 32})
        for _ in range(3)
    )
    judged_need, other_need = need(DAY2), need(DAY2)
    events = [ev(SupplierRegistered, s, DAY2) for s in (chosen, rejected, unjudged)]
    events += [ev(NeedPublished, n, DAY2) for n in (judged_need, other_need)]
    events += [ev(MatchFound, scored(judged_need.id, s.id, 0.8), DAY2) for s in (chosen, rejected, unjudged)]
    verdicts = {chosen.id: "selected", rejected.id: "not_relevant"}
    events += [
        ev(
            MatchJudged,
            scored(judged_need.id, sid, 0.8).model_copy(
                update={"version": 2, "verdict": v, "verdict_reason": "pris"}
            ),
            DAY2,
        )
        for sid, v in verdicts.items()
    ]

    labelled = labelled_set(fold(events))

    suppliers, needs, grades = _validated(labelled["suppliers"], labelled["needs"], labelled["judgments"])
    assert [n.id for n in needs] == [judged_need.id]  # only judged needs
    assert grades == {judged_need.id: {chosen.id: 3, rejected.id: 0}}
    assert labelled["judgments"][judged_need.id][rejected.id]["note"] == "not_relevant: pris"
    assert len(suppliers) == 3  # every supplier is a candidate for the needs
    assert all(s.contact_email == "redacted@example.se" and s.alerts.webhook_url is None for s in suppliers)
