"""The `innomatch` command: run the embedded stack, serve one service, migrate, report."""

from __future__ import annotations

import asyncio
import importlib
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from services.contracts.topics import ALL_TOPICS, dlq
from services.infra.settings import ServiceName, Settings

app = typer.Typer(help="Innomatch: matchmaking for innovation procurement.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        typer.echo(f"innomatch: bad settings: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    service: Annotated[ServiceName, typer.Argument(help="suppliers, needs, matcher, notifier or web")],
) -> None:
    """Run one service (production entry point; settings from INNOMATCH_* variables)."""
    import uvicorn

    from services.infra.logs import configure_logging

    settings = _settings()
    configure_logging(settings, service)
    server: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port_of(service),
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go through configure_logging's pipeline
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
    if service == "web" and settings.web_workers > 1:
        # The forum renders pages on the CPU: several processes share its port (uvicorn's
        # workers, each building the app from the environment) and write their metrics where
        # /metrics adds them up (services/infra/metrics.py).
        with tempfile.TemporaryDirectory(prefix="innomatch-web-metrics-") as metrics_dir:
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
            uvicorn.run(
                "services.web.app:from_environment", factory=True, workers=settings.web_workers, **server
            )
        return
    module = importlib.import_module(f"services.{service}.app")
    uvicorn.run(module.create_app(settings), **server)


@app.command()
def migrate(
    service: Annotated[ServiceName | None, typer.Argument(help="one service; all when omitted")] = None,
) -> None:
    """Apply the database migrations of all services, or of one."""
    from services.infra.db import migrate as run

    applied = asyncio.run(run(_settings(), [service] if service else None))
    for name, names in applied.items():
        typer.echo(f"{name}: {', '.join(names) if names else 'up to date'}")


@app.command("create-topics")
def create_topics() -> None:
    """Create the Kafka topics and their dead-letter topics where they are missing."""
    from services.infra.broker import ensure_topics

    settings = _settings()
    topics = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]
    created = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap,
            topics,
            settings.kafka_partitions,
            settings.kafka_replication_factor,
            settings.kafka_min_insync_replicas,
        )
    )
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="where PostgreSQL keeps its data")] = Path(".innomatch"),
    kafka_port: Annotated[int, typer.Option(envvar="INNOMATCH_DEV_KAFKA_PORT")] = 19092,
    postgres_port: Annotated[int, typer.Option(envvar="INNOMATCH_DEV_POSTGRES_PORT")] = 15432,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="also load demo data through the APIs and print alerts as they arrive"),
    ] = False,
) -> None:
    """Run everything on this machine: broker, database and the five services. Ctrl-C stops it."""
    import os

    from services.infra.devstack import run_dev

    on_ready = None
    if demo:
        from services.demo.runner import start_in_background

        # The demo registers about 50 suppliers from this machine at once.
        os.environ.setdefault("INNOMATCH_REGISTRATION_RATE_PER_MINUTE", "0")
        on_ready = start_in_background
    raise typer.Exit(run_dev(data_dir.resolve(), kafka_port, postgres_port, on_ready))


@app.command()
def report(
    since: Annotated[
        str | None,
        typer.Option(help="count what came into being from this date (or ISO date-time, UTC) on"),
    ] = None,
    format: Annotated[
        Literal["md", "json", "html"], typer.Option("--format", help="md, json or html")
    ] = "md",
    out: Annotated[Path | None, typer.Option(help="write here instead of to stdout")] = None,
    needs_url: Annotated[
        str | None, typer.Option(help="needs service for the authorities (default from the settings)")
    ] = None,
    dev_json: Annotated[
        Path,
        typer.Option(help="a running `innomatch dev` to report on, unless INNOMATCH_KAFKA_BOOTSTRAP is set"),
    ] = Path(".innomatch/dev.json"),
) -> None:
    """The results report: needs, buyer groups, suppliers, matches and alerts, from the events."""
    from services.report.build import make_report, parse_since
    from services.report.render import render
    from services.report.target import resolve

    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    from aiokafka.errors import KafkaError

    target = resolve(dev_json, needs_url)
    try:
        result = asyncio.run(
            make_report(
                target.kafka_bootstrap,
                since=start,
                needs_url=target.needs_url,
                operator_token=target.operator_token,
                fetch_max_wait_ms=target.fetch_max_wait_ms,
            )
        )
    except (KafkaError, TimeoutError) as exc:
        typer.echo(f"innomatch report: cannot read the topics at {target.kafka_bootstrap}: {exc}", err=True)
        raise typer.Exit(1) from exc
    text = render(result, format)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"written to {out}", err=True)


@app.command()
def verdicts(
    out: Annotated[Path, typer.Option(help="write the labelled set here (JSON)")],
    dev_json: Annotated[
        Path,
        typer.Option(help="a running `innomatch dev` to read, unless INNOMATCH_KAFKA_BOOTSTRAP is set"),
    ] = Path(".innomatch/dev.json"),
) -> None:
    """The buyers' verdicts on matches as a labelled set in the format of tests/eval."""
    import json

    from aiokafka.errors import KafkaError

    from services.report.build import make_labelled_set
    from services.report.target import resolve

    target = resolve(dev_json, None)
    try:
        labelled = asyncio.run(
            make_labelled_set(target.kafka_bootstrap, fetch_max_wait_ms=target.fetch_max_wait_ms)
        )
    except (KafkaError, TimeoutError) as exc:
        typer.echo(f"innomatch verdicts: cannot read the topics at {target.kafka_bootstrap}: {exc}", err=True)
        raise typer.Exit(1) from exc
    out.write_text(json.dumps(labelled, ensure_ascii=False, indent=1), encoding="utf-8")
    pairs = sum(len(v) for v in labelled["judgments"].values())
    typer.echo(f"{pairs} judged pairs of {len(labelled['needs'])} needs written to {out}", err=True)


if __name__ == "__main__":
    app()
