"""Embedding throughput: supplier profiles and needs per second, per process and per core.

    uv run python -m tests.bench.bench_embedding [--texts 96] [--processes 1 2] [--threads 1 2]

Embeds the development set's supplier profiles (sentence by sentence, as the embedder does)
and needs (three views each) with `semantic.Model`, in each combination of worker processes
(as matcher instances would) and model threads per process, and prints texts per second in
all and per core used. Writes tests/bench/results/embedding.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _worker(kind: str, count: int, offset: int) -> None:
    from services.matcher import semantic
    from tests.eval.evaluate import load_parts

    suppliers, needs, _ = load_parts("dev")
    model = semantic.Model()
    model.queries(["warm up"])
    states: list[Any] = suppliers if kind == "supplier" else needs
    chosen = [states[(offset + i) % len(states)] for i in range(count)]
    started = time.perf_counter()
    for i in range(0, count, 16):
        batch = chosen[i : i + 16]
        model.suppliers(batch) if kind == "supplier" else model.needs(batch)
    print(json.dumps({"seconds": time.perf_counter() - started}))


def _run(kind: str, texts: int, processes: int, threads: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.bench_embedding",
                "--worker",
                kind,
                str(texts),
                str(i * texts),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    seconds = [json.loads(w.communicate()[0].strip().splitlines()[-1])["seconds"] for w in workers]
    wall = time.perf_counter() - started
    total = texts * processes
    per_s = total / max(seconds)
    return {
        "kind": kind,
        "processes": processes,
        "threads_per_process": threads,
        "texts": total,
        "texts_per_s": round(per_s, 2),
        "texts_per_s_per_core": round(per_s / min(os.cpu_count() or 1, processes * threads), 2),
        "wall_s_with_start_up": round(wall, 1),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=96, help="texts per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = []
    for kind in ("supplier", "need"):
        for processes in args.processes:
            for threads in args.threads:
                row = _run(kind, args.texts if kind == "supplier" else args.texts // 2, processes, threads)
                print(json.dumps(row))
                rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "embedding.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
