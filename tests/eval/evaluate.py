"""Run a labelled evaluation set through the matcher's engine and score the rankings.

    uv run python -m tests.eval.evaluate [--set dev|heldout|legacy] [--scorer matcher|model]
                                         [--dataset PATH] [--out PATH] [--limit N]

`--set dev` (the default) is the development set, the needs of `devset/part-*.json` that are
not held out; weights and thresholds are chosen on it. `--set heldout` is the frozen held-out
part: report it, never tune on it. `--set legacy` is the older `dataset.json`. `--scorer model`
ranks by the matcher's embeddings alone (cosine, region and TRL as filters); `--scorer
model-whole` by the plain use of the model (one vector per whole text, CPV labels included),
the baseline the matcher is compared with.

Prints nDCG@10 and recall@20 per need and their means, and every ranked supplier that
violates a hard constraint (region or TRL). Writes a JSON report and exits 1 when there
are violations. Embeddings are cached under `.innomatch/eval-vectors.npz` by text hash.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np

from services.contracts.events import NeedState, SupplierState
from tests.eval.metrics import ndcg_at_k, recall_at_k, region_ok, trl_ok

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
LEGACY = HERE / "dataset.json"
PARTS = HERE / "devset"
CACHE = ROOT / ".innomatch" / "eval-vectors.npz"
NDCG_K = 10
RECALL_K = 20

Grades = dict[str, dict[str, int]]


def load(path: Path) -> tuple[list[SupplierState], list[NeedState], Grades]:
    """The dataset's validated records and grades; fails loudly on anything malformed."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return _validated(raw["suppliers"], raw["needs"], raw["judgments"])


def _validated(
    supplier_records: list[Any], need_records: list[Any], judgments: dict[str, Any]
) -> tuple[list[SupplierState], list[NeedState], Grades]:
    suppliers = [SupplierState.model_validate(record) for record in supplier_records]
    needs = [NeedState.model_validate(record) for record in need_records]
    known = {supplier.id for supplier in suppliers}
    grades: Grades = {}
    for need in needs:
        judged = judgments.get(need.id)
        if not judged:
            raise ValueError(f"need {need.id} has no judgments")
        unknown = set(judged) - known
        if unknown:
            raise ValueError(f"need {need.id} judges unknown suppliers {sorted(unknown)}")
        grades[need.id] = {sid: int(j["grade"]) for sid, j in judged.items()}
    return suppliers, needs, grades


def load_parts(which: str, parts: Path = PARTS) -> tuple[list[SupplierState], list[NeedState], Grades]:
    """The development (`dev`) or held-out (`heldout`) needs of every part, against all the
    parts' suppliers (each part's suppliers are distractors for the others' needs)."""
    supplier_records: list[Any] = []
    need_records: list[Any] = []
    judgments: dict[str, Any] = {}
    for path in sorted(parts.glob("part-*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        held = set(raw["heldout"])
        supplier_records += raw["suppliers"]
        for record in raw["needs"]:
            if (record["id"] in held) == (which == "heldout"):
                need_records.append(record)
                judgments[record["id"]] = raw["judgments"][record["id"]]
    return _validated(supplier_records, need_records, judgments)


def as_dataset(suppliers: list[SupplierState], needs: list[NeedState], grades: Grades) -> dict[str, Any]:
    """The set in the single-file format of `dataset.json` (for tools that read that)."""
    return {
        "suppliers": [s.model_dump(mode="json") for s in suppliers],
        "needs": [n.model_dump(mode="json") for n in needs],
        "judgments": {n: {s: {"grade": g} for s, g in judged.items()} for n, judged in grades.items()},
    }


class VectorCache:
    """Embeddings of the set's texts by text hash, computed once and kept on disk."""

    def __init__(self, path: Path = CACHE) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray[Any, Any]] = {}
        if path.exists():
            with np.load(path) as stored:
                self.vectors = {key: stored[key] for key in stored.files}
        self.dirty = False

    def embed(
        self, suppliers: list[SupplierState], needs: list[NeedState]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from services.matcher import semantic
        from services.matcher.embeddings import key_of

        model = semantic.Model()
        missing_s = [s for s in suppliers if key_of(s) not in self.vectors]
        missing_n = [n for n in needs if key_of(n) not in self.vectors]
        for start in range(0, len(missing_s), 32):
            chunk = missing_s[start : start + 32]
            for state, done in zip(chunk, model.suppliers(chunk), strict=True):
                self.vectors[key_of(state)] = done.vector
            self.dirty = True
        for start in range(0, len(missing_n), 16):
            chunk_n = missing_n[start : start + 16]
            for need, done in zip(chunk_n, model.needs(chunk_n), strict=True):
                self.vectors[key_of(need)] = done.vector
            self.dirty = True
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, **self.vectors)  # type: ignore[arg-type]
            self.dirty = False
        return (
            {s.id: self.vectors[key_of(s)] for s in suppliers},
            {n.id: self.vectors[key_of(n)] for n in needs},
        )

    def embed_whole(
        self, suppliers: list[SupplierState], needs: list[NeedState]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Whole texts, one vector each (need as a query, supplier as a passage, CPV labels
        included): the plain use of the model, the baseline the matcher is compared with."""
        from services.matcher import semantic

        model = semantic.Model()
        texts = {s.id: (semantic.supplier_text(s), "passage") for s in suppliers}
        texts |= {n.id: (semantic.need_text(n), "query") for n in needs}
        missing = [(t, role) for t, role in texts.values() if semantic.text_hash(t, role) not in self.vectors]
        for role in ("passage", "query"):
            todo = [t for t, r in missing if r == role]
            for start in range(0, len(todo), 32):
                chunk = todo[start : start + 32]
                embed = model.passages if role == "passage" else model.queries
                for t, v in zip(chunk, embed(chunk), strict=True):
                    self.vectors[semantic.text_hash(t, role)] = v
                self.dirty = True
        if self.dirty:
            np.savez(self.path, **self.vectors)  # type: ignore[arg-type]
            self.dirty = False
        out = {i: self.vectors[semantic.text_hash(t, role)] for i, (t, role) in texts.items()}
        return {s.id: out[s.id] for s in suppliers}, {n.id: out[n.id] for n in needs}


def rank_all(
    suppliers: list[SupplierState],
    needs: list[NeedState],
    limit: int,
    scorer: str = "matcher",
    vectors: tuple[dict[str, Any], dict[str, Any]] | None = None,
    **engine_options: Any,
) -> dict[str, list[tuple[str, float]]]:
    """need id -> [(supplier id, score), ...] best first, as the chosen scorer ranks them."""
    from services.matcher.engine import MatchEngine  # imported late: the engine is optional

    supplier_vectors, need_vectors = vectors or ({}, {})
    if scorer in ("model", "model-whole"):
        by_id = {s.id: s for s in suppliers}
        matrix = np.stack([supplier_vectors[s.id] for s in suppliers])
        out = {}
        for need in needs:
            cosines = matrix @ need_vectors[need.id]
            order = sorted(range(len(suppliers)), key=lambda i: (-cosines[i], suppliers[i].id))
            kept = [
                (suppliers[i].id, float(cosines[i]))
                for i in order
                if region_ok(by_id[suppliers[i].id], need) and trl_ok(by_id[suppliers[i].id], need)
            ]
            out[need.id] = kept[:limit]
        return out
    engine = MatchEngine(**engine_options)
    engine.load_suppliers(suppliers, supplier_vectors)
    for need in needs:
        engine.upsert_need(need, need_vectors.get(need.id))
    return {
        need.id: [(s.supplier_id, s.score) for s in engine.rank_suppliers(need.id, limit=limit)]
        for need in needs
    }


def evaluate(
    suppliers: list[SupplierState],
    needs: list[NeedState],
    grades: Grades,
    limit: int = 50,
    scorer: str = "matcher",
    vectors: tuple[dict[str, Any], dict[str, Any]] | None = None,
    **engine_options: Any,
) -> dict[str, Any]:
    rankings = rank_all(suppliers, needs, limit, scorer, vectors, **engine_options)
    by_id = {supplier.id: supplier for supplier in suppliers}
    per_need = []
    violations = []
    for need in needs:
        ranked = rankings[need.id]
        ids = [sid for sid, _ in ranked]
        judged = grades[need.id]
        for rank, sid in enumerate(ids, start=1):
            supplier = by_id[sid]
            failed = [
                name
                for name, ok in (("region", region_ok(supplier, need)), ("trl", trl_ok(supplier, need)))
                if not ok
            ]
            if failed:
                violations.append({"need": need.id, "supplier": sid, "rank": rank, "failed": failed})
        distractors = [sid for sid in ids[:NDCG_K] if judged.get(sid, 0) == 0]
        missed = sorted(sid for sid, g in judged.items() if g >= 2 and sid not in ids[:RECALL_K])
        per_need.append(
            {
                "need": need.id,
                "ndcg@10": round(ndcg_at_k(ids, judged, NDCG_K), 4),
                "recall@20": round(recall_at_k(ids, judged, RECALL_K), 4),
                "ranked": len(ids),
                "judged_zero_in_top10": distractors,
                "relevant_missed_in_top20": missed,
                "top10": [
                    {"supplier": sid, "score": round(score, 4), "grade": judged.get(sid, 0)}
                    for sid, score in ranked[:NDCG_K]
                ],
            }
        )
    return {
        "needs": len(needs),
        "suppliers": len(suppliers),
        "limit": limit,
        "scorer": scorer,
        "mean_ndcg@10": round(mean(row["ndcg@10"] for row in per_need), 4),
        "mean_recall@20": round(mean(row["recall@20"] for row in per_need), 4),
        "violations": violations,
        "per_need": per_need,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=["dev", "heldout", "legacy"], default="dev")
    parser.add_argument("--scorer", choices=["matcher", "model", "model-whole"], default="matcher")
    parser.add_argument("--dataset", type=Path, help="a single-file set instead of --set")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--limit", type=int, default=50, help="suppliers ranked per need (default 50)")
    args = parser.parse_args(argv)

    if args.dataset:
        suppliers, needs, grades = load(args.dataset)
    elif args.set == "legacy":
        suppliers, needs, grades = load(LEGACY)
    else:
        suppliers, needs, grades = load_parts(args.set)
    cache = VectorCache()
    vectors = (
        cache.embed_whole(suppliers, needs) if args.scorer == "model-whole" else cache.embed(suppliers, needs)
    )
    report = evaluate(suppliers, needs, grades, limit=args.limit, scorer=args.scorer, vectors=vectors)

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

    out = args.out or HERE / "results" / f"{args.set}-{args.scorer}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"report: {out}")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
