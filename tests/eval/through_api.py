"""Run an evaluation set through the public API of a running stack, as a new user would.

    uv run python -m tests.eval.through_api [--set dev|heldout] [--dev-json .innomatch/dev.json]

Creates an authority and a buyer group per need's group, publishes half the needs, registers
every supplier, publishes the other half, waits until the matcher is quiet, then reads each
need's `GET /v1/needs/{id}/matches?limit=50` with the operator token and scores nDCG@10 and
recall@20 with the set's grades. It also asks the pair endpoint to explain every match it
returned, and counts region and TRL violations. Writes `tests/eval/results/api-<set>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

import httpx

from services.contracts.events import NeedState, SupplierState
from tests.eval.evaluate import HERE, load_parts
from tests.eval.metrics import ndcg_at_k, recall_at_k, region_ok, trl_ok


def _public_org_number(n: int) -> str:
    """A valid organisationsnummer of a public body (first digit 2)."""
    digits = f"2120{n % 100_000:05d}"
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{digits[:6]}-{digits[6:]}{(10 - total % 10) % 10}"


class Api:
    def __init__(self, client: httpx.AsyncClient, urls: dict[str, str], operator: str) -> None:
        self.client, self.urls, self.operator = client, urls, {"Authorization": f"Bearer {operator}"}

    async def post(self, service: str, path: str, body: dict[str, Any], token: dict[str, str]) -> Any:
        got = await self.client.post(f"{self.urls[service]}{path}", json=body, headers=token)
        if got.status_code >= 300:
            raise RuntimeError(f"POST {path}: {got.status_code} {got.text}")
        return got.json()

    async def get(self, service: str, path: str) -> Any:
        got = await self.client.get(f"{self.urls[service]}{path}", headers=self.operator)
        if got.status_code == 404:
            return None
        got.raise_for_status()
        return got.json()


async def run(which: str, dev: dict[str, Any], concurrency: int = 8) -> dict[str, Any]:
    suppliers, needs, grades = load_parts(which)
    async with httpx.AsyncClient(timeout=60) as client:
        api = Api(client, dev["services"], dev["operator_token"])
        groups: dict[str, str] = {}
        group_tokens: dict[str, dict[str, str]] = {}
        for i, need in enumerate(needs):
            if need.buyer_group_id in groups:
                continue
            authority = await api.post(
                "needs",
                "/v1/authorities",
                {
                    "org_number": _public_org_number(int(time.time()) % 10_000 * 100 + i),
                    "name": f"Myndighet {need.buyer_group_id}",
                    "level": (need.authority_levels or ["local"])[0],
                    "region": need.regions[0],
                },
                api.operator,
            )
            group = await api.post(
                "needs",
                "/v1/buyer-groups",
                {
                    "name": f"Grupp {need.buyer_group_id}",
                    "focus_area": need.focus_area.value,
                    "member_authority_ids": [authority["id"]],
                },
                api.operator,
            )
            groups[need.buyer_group_id] = group["id"]
            group_tokens[need.buyer_group_id] = {"Authorization": f"Bearer {group['token']}"}

        need_ids: dict[str, str] = {}

        async def publish(need: NeedState) -> None:
            body = need.model_dump(
                mode="json",
                include={
                    "title",
                    "description",
                    "cpv_codes",
                    "focus_area",
                    "regions",
                    "min_trl",
                    "preferred_supplier_types",
                    "procedure",
                    "budget_sek",
                },
            )
            body["respond_by"] = (date.today() + timedelta(days=120)).isoformat()
            made = await api.post(
                "needs",
                f"/v1/buyer-groups/{groups[need.buyer_group_id]}/needs",
                body,
                group_tokens[need.buyer_group_id],
            )
            need_ids[need.id] = made["id"]

        supplier_ids: dict[str, str] = {}
        gate = asyncio.Semaphore(concurrency)

        async def register(supplier: SupplierState) -> None:
            body = supplier.model_dump(
                mode="json",
                include={
                    "org_number",
                    "name",
                    "size",
                    "company_type",
                    "founded_year",
                    "contact_email",
                    "capabilities",
                },
            )
            async with gate:
                made = await api.post("suppliers", "/v1/suppliers", body, {})
            supplier_ids[supplier.id] = made["id"]

        half = len(needs) // 2
        for need in needs[:half]:
            await publish(need)
        await asyncio.gather(*(register(s) for s in suppliers))
        for need in needs[half:]:
            await publish(need)

        ours = {v: k for k, v in supplier_ids.items()}
        by_id = {s.id: s for s in suppliers}
        need_of = {n.id: n for n in needs}
        # Quiet: the rankings stop changing for a while.
        previous: dict[str, list[str]] = {}
        stable_since = time.monotonic()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            current = {}
            for local, remote in need_ids.items():
                page = await api.get("matcher", f"/v1/needs/{remote}/matches?limit=50")
                if page is not None:  # None: the matcher has not heard of the need yet
                    current[local] = [ours.get(m["supplier_id"], "?") for m in page["matches"]]
            if current != previous or len(current) < len(need_ids):
                previous, stable_since = current, time.monotonic()
            elif time.monotonic() - stable_since > 20:
                break
            await asyncio.sleep(2)

        per_need = []
        violations = []
        unexplained = 0
        for local, ranked in previous.items():
            need = need_of[local]
            for sid in ranked:
                supplier = by_id.get(sid)
                if supplier is None:
                    continue  # another run's supplier on the same stack
                if not (region_ok(supplier, need) and trl_ok(supplier, need)):
                    violations.append({"need": local, "supplier": sid})
                pair = await api.get("matcher", f"/v1/needs/{need_ids[local]}/matches/{supplier_ids[sid]}")
                if not pair or not pair.get("explanation") or not pair["is_match"]:
                    unexplained += 1
            per_need.append(
                {
                    "need": local,
                    "ndcg@10": round(ndcg_at_k(ranked, grades[local], 10), 4),
                    "recall@20": round(recall_at_k(ranked, grades[local], 20), 4),
                    "ranked": len(ranked),
                }
            )
    return {
        "set": which,
        "needs": len(per_need),
        "suppliers": len(suppliers),
        "mean_ndcg@10": round(mean(r["ndcg@10"] for r in per_need), 4),
        "mean_recall@20": round(mean(r["recall@20"] for r in per_need), 4),
        "violations": violations,
        "matches_not_explained": unexplained,
        "per_need": per_need,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=["dev", "heldout"], default="dev")
    parser.add_argument("--dev-json", type=Path, default=Path(".innomatch/dev.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.set, json.loads(args.dev_json.read_text())))
    for row in report["per_need"]:
        print(f"{row['need']:<12} {row['ndcg@10']:>6.3f} {row['recall@20']:>6.3f} {row['ranked']:>4}")
    print(
        f"mean nDCG@10 {report['mean_ndcg@10']:.3f}  recall@20 {report['mean_recall@20']:.3f}  "
        f"violations {len(report['violations'])}  unexplained {report['matches_not_explained']}"
    )
    out = HERE / "results" / f"api-{args.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 1 if report["violations"] or report["matches_not_explained"] else 0


if __name__ == "__main__":
    sys.exit(main())
