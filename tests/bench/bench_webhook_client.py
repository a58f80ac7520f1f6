"""The notifier's webhook client alone: signed POSTs of a 2 KB body to a local aiohttp
server running in another process, so the CPU measured is the client's.

    uv run python -m tests.bench.bench_webhook_client --posts 4000 --concurrency 32

Prints POSTs per second and the client's CPU per POST, and writes them to
tests/bench/results/webhook_client.json. No stack needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from services.infra.devstack import free_port
from services.infra.settings import Settings
from services.notifier import webhook

RESULTS = Path(__file__).parent / "results" / "webhook_client.json"
SERVER = """
import sys
from aiohttp import web

async def hook(request):
    await request.read()
    return web.Response(text="ok")

app = web.Application()
app.router.add_post("/hook", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
BODY = json.dumps({"type": "alert", "summary": "x" * 2000}).encode()


async def _run(client: webhook.WebhookClient, url: str, posts: int, concurrency: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            answer = await webhook.post(client, url, "bench-secret-0123456789", BODY, f"bench.{i}")
            assert answer.ok, answer

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(posts)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def measure(url: str, posts: int, concurrency: int) -> dict[str, Any]:
    client = webhook.WebhookClient(Settings(mode="development", webhook_allow_private=True))
    try:
        await _run(client, url, min(posts, 200), concurrency)  # connections opened, code warm
        wall, cpu = await _run(client, url, posts, concurrency)
    finally:
        await client.aclose()
    return {
        "posts": posts,
        "concurrency": concurrency,
        "posts_per_s": round(posts / wall),
        "client_cpu_ms_per_post": round(cpu / posts * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        time.sleep(1.5)
        result = asyncio.run(measure(f"http://127.0.0.1:{port}/hook", args.posts, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
