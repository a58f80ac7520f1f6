"""Check one part of the development set: valid records, judgments of known ids, held-out needs.

.venv/bin/python -m tests.eval.devset.check_part tests/eval/devset/part-1.json
"""

import json
import sys
from collections import Counter
from pathlib import Path

from services.contracts.events import NeedState, SupplierState


def check(path: Path) -> list[str]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    suppliers = []
    for record in raw["suppliers"]:
        try:
            suppliers.append(SupplierState.model_validate(record))
        except Exception as exc:  # report every bad record, not only the first
            problems.append(f"supplier {record.get('id')}: {exc}")
    needs = []
    for record in raw["needs"]:
        try:
            needs.append(NeedState.model_validate(record))
        except Exception as exc:
            problems.append(f"need {record.get('id')}: {exc}")
    ids = Counter(s.id for s in suppliers)
    problems += [f"duplicate supplier id {i}" for i, n in ids.items() if n > 1]
    orgs = Counter(s.org_number for s in suppliers)
    problems += [f"duplicate org_number {o}" for o, n in orgs.items() if n > 1]
    need_ids = {n.id for n in needs}
    for need_id, judged in raw["judgments"].items():
        if need_id not in need_ids:
            problems.append(f"judgments for unknown need {need_id}")
        unknown = set(judged) - set(ids)
        if unknown:
            problems.append(f"need {need_id} judges unknown suppliers {sorted(unknown)}")
        if sum(1 for j in judged.values() if j["grade"] >= 2) < 3:
            problems.append(f"need {need_id} has fewer than three suppliers graded 2 or more")
    for need_id in need_ids - set(raw["judgments"]):
        problems.append(f"need {need_id} has no judgments")
    for need_id in raw.get("heldout", []):
        if need_id not in need_ids:
            problems.append(f"held-out need {need_id} unknown")
    print(f"{path}: {len(suppliers)} suppliers, {len(needs)} needs, {len(raw.get('heldout', []))} held out")
    return problems


if __name__ == "__main__":
    found = [p for arg in sys.argv[1:] for p in check(Path(arg))]
    for problem in found:
        print(problem)
    sys.exit(1 if found else 0)
