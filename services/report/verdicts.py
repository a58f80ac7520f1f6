"""The buyers' verdicts as a labelled set in the format of `tests/eval`: the suppliers, the
needs that were judged, and a grade for every judged pair, so that matching can be evaluated
and tuned on buyers' real judgements (`uv run python -m tests.eval.evaluate --set FILE`).

Grades follow the set's scale (3 fits exactly, 0 does not fit): `selected` 3, `contacted` and
`relevant` 2, `not_relevant` 0. The suppliers' contact e-mail is replaced and their alert
settings (webhook, secret) left at their defaults."""

from __future__ import annotations

from typing import Any

from services.contracts.events import AlertSettings, SupplierState
from services.contracts.vocab import Verdict
from services.report.aggregate import Folded

GRADES = {Verdict.selected: 3, Verdict.contacted: 2, Verdict.relevant: 2, Verdict.not_relevant: 0}
REDACTED_EMAIL = "redacted@example.se"


def labelled_set(folded: Folded) -> dict[str, Any]:
    judgments: dict[str, dict[str, dict[str, Any]]] = {}
    for match in sorted(folded.matches.values(), key=lambda m: m.id):
        if match.verdict is None:
            continue
        verdict = Verdict(match.verdict)
        note = verdict.value + (f": {match.verdict_reason}" if match.verdict_reason else "")
        judgments.setdefault(match.need_id, {})[match.supplier_id] = {
            "grade": GRADES[verdict],
            "note": note,
        }
    suppliers = [
        s.model_copy(update={"contact_email": REDACTED_EMAIL, "alerts": AlertSettings()}).model_dump(
            mode="json"
        )
        for s in sorted(folded.suppliers.values(), key=lambda s: s.id)
        if isinstance(s, SupplierState)
    ]
    needs = [
        n.model_dump(mode="json")
        for n in sorted(folded.needs.values(), key=lambda n: n.id)
        if n.id in judgments
    ]
    return {"suppliers": suppliers, "needs": needs, "judgments": judgments}
