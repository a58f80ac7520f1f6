"""The `innomatch` command: run the embedded stack, serve one service, migrate."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Annotated

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
    service: Annotated[ServiceName, typer.Argument(help="suppliers, needs, matcher or notifier")],
) -> None:
    """Run one service (production entry point; settings from INNOMATCH_* variables)."""
    import uvicorn

    from services.infra.logs import configure_logging

    settings = _settings()
    configure_logging(settings, service)
    module = importlib.import_module(f"services.{service}.app")
    uvicorn.run(
        module.create_app(settings),
        host=settings.host,
        port=settings.port_of(service),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


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
    created = asyncio.run(ensure_topics(settings.kafka_bootstrap, topics, settings.kafka_partitions))
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="where PostgreSQL keeps its data")] = Path(".innomatch"),
    kafka_port: Annotated[int, typer.Option(envvar="INNOMATCH_DEV_KAFKA_PORT")] = 19092,
    postgres_port: Annotated[int, typer.Option(envvar="INNOMATCH_DEV_POSTGRES_PORT")] = 15432,
) -> None:
    """Run everything on this machine: broker, database and the four services. Ctrl-C stops it."""
    from services.infra.devstack import run_dev

    raise typer.Exit(run_dev(data_dir.resolve(), kafka_port, postgres_port))


if __name__ == "__main__":
    app()
