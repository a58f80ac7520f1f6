"""Run the labelled evaluation set through the matcher's engine and score the rankings.

    uv run python -m tests.eval.evaluate [--dataset PATH] [--out PATH] [--limit N]

Prints nDCG@10 and recall@20 per need and their means, and every ranked supplier that
violates a hard constraint (region or TRL). Writes a JSON report and exits 1 when there
are violations.
"""

import argparse
import json
import sys
from pathlib import Path
from statistics import mean
from typing import Any

from services.contracts.events import NeedState, SupplierState
from tests.eval.metrics import ndcg_at_k, recall_at_k, region_ok, trl_ok

HERE = Path(__file__).parent
DEFAULT_DATASET = HERE / "dataset.json"
DEFAULT_OUT = HERE / "results" / "eval.json"
NDCG_K = 10
RECALL_K = 20


def load(path: Path) -> tuple[list[SupplierState], list[NeedState], dict[str, dict[str, int]]]:
    """The dataset's validated records and grades; fails loudly on anything malformed."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    suppliers = [SupplierState.model_validate(record) for record in raw["suppliers"]]
    needs = [NeedState.model_validate(record) for record in raw["needs"]]
    known = {supplier.id for supplier in suppliers}
    grades: dict[str, dict[str, int]] = {}
    for need in needs:
        judged = raw["judgments"].get(need.id)
        if not judged:
            raise ValueError(f"need {need.id} has no judgments")
        unknown = set(judged) - known
        if unknown:
            raise ValueError(f"need {need.id} judges unknown suppliers {sorted(unknown)}")
        grades[need.id] = {sid: int(j["grade"]) for sid, j in judged.items()}
    return suppliers, needs, grades


def evaluate(
    suppliers: list[SupplierState],
    needs: list[NeedState],
    grades: dict[str, dict[str, int]],
    limit: int = 50,
) -> dict[str, Any]:
    from services.matcher.engine import MatchEngine  # imported late: the engine is optional

    engine = MatchEngine()
    for supplier in suppliers:
        engine.upsert_supplier(supplier)
    for need in needs:
        engine.upsert_need(need)
    by_id = {supplier.id: supplier for supplier in suppliers}

    per_need = []
    violations = []
    for need in needs:
        ranked = engine.rank_suppliers(need.id, limit=limit)
        ids = [scored.supplier_id for scored in ranked]
        judged = grades[need.id]
        for rank, scored in enumerate(ranked, start=1):
            supplier = by_id[scored.supplier_id]
            failed = [
                name
                for name, ok in (("region", region_ok(supplier, need)), ("trl", trl_ok(supplier, need)))
                if not ok
            ]
            if failed:
                violations.append({"need": need.id, "supplier": supplier.id, "rank": rank, "failed": failed})
        distractors = [sid for sid in ids[:NDCG_K] if judged.get(sid) == 0]
        per_need.append(
            {
                "need": need.id,
                "ndcg@10": round(ndcg_at_k(ids, judged, NDCG_K), 4),
                "recall@20": round(recall_at_k(ids, judged, RECALL_K), 4),
                "ranked": len(ids),
                "judged_zero_in_top10": distractors,
                "top10": [
                    {
                        "supplier": s.supplier_id,
                        "score": round(s.score, 4),
                        "grade": judged.get(s.supplier_id, 0),
                    }
                    for s in ranked[:NDCG_K]
                ],
            }
        )
    return {
        "needs": len(needs),
        "suppliers": len(suppliers),
        "limit": limit,
        "mean_ndcg@10": round(mean(row["ndcg@10"] for row in per_need), 4),
        "mean_recall@20": round(mean(row["recall@20"] for row in per_need), 4),
        "violations": violations,
        "per_need": per_need,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=50, help="suppliers ranked per need (default 50)")
    args = parser.parse_args(argv)

    suppliers, needs, grades = load(args.dataset)
    report = evaluate(suppliers, needs, grades, limit=args.limit)

    print(f"{'need':<28} {'nDCG@10':>8} {'R@20':>6} {'ranked':>6}  judged-0 in top 10")
    for row in report["per_need"]:
        zeros = ", ".join(row["judged_zero_in_top10"])
        print(
            f"{row['need']:<28} {row['ndcg@10']:>8.3f} {row['recall@20']:>6.3f} {row['ranked']:>6}  {zeros}"
        )
    print(f"{'mean':<28} {report['mean_ndcg@10']:>8.3f} {report['mean_recall@20']:>6.3f}")
    print(f"constraint violations: {len(report['violations'])}")
    for v in report["violations"]:
        print(f"  {v['need']} <- {v['supplier']} at rank {v['rank']}: {'+'.join(v['failed'])}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"report: {args.out}")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
