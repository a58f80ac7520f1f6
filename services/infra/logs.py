"""One log format for the whole process: our structlog loggers and the standard-library
loggers of FastStream, uvicorn and aiokafka go through the same processors and renderer.

- `INNOMATCH_LOG_FORMAT=json` (or `auto` without a terminal): one JSON object per line with
  `event`, `level`, `timestamp`, `logger` and `service`, plus what the call bound.
- `console` (or `auto` on a terminal): one readable line per event, coloured on a terminal
  or with FORCE_COLOR set (and NO_COLOR unset).

Libraries log at WARNING and above only; our modules and FastStream log at the configured
level (INNOMATCH_LOG_LEVEL), and FastStream's per-task "callback for Task-N is being
executed" lines count as DEBUG.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import TextIO

import structlog

from services.infra.settings import Settings

# Loggers of the libraries whose records we render ourselves. FastStream and uvicorn install
# handlers of their own (and stop propagation) on some of these; we take them back.
_FOREIGN = (
    "faststream",
    "faststream.access",
    "faststream.access.kafka",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "aiokafka",
)
_TASK_NOISE = re.compile(r"callback for .+ is being executed")


class _Demote(logging.Filter):
    """FastStream's supervisor says "callback for Task-N is being executed..." at INFO for
    every consumer task that ends (dozens at shutdown): treat them as DEBUG."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("faststream") and _TASK_NOISE.match(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.threshold


def _use_json(settings: Settings, stream: TextIO) -> bool:
    return settings.log_format == "json" or (settings.log_format == "auto" and not stream.isatty())


def _colours(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or stream.isatty()


def configure_logging(settings: Settings, service: str, stream: TextIO | None = None) -> None:
    """Route every log record of the process to `stream` (stderr) in one format."""
    import faststream  # noqa: F401  (creates its logger, with its own handler, on import)

    out = stream if stream is not None else sys.stderr
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if _use_json(settings, out)
        else structlog.dev.ConsoleRenderer(colors=_colours(out))
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.addFilter(_Demote(level))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Records from the standard library: their message becomes the event, and the
            # fields they carry (FastStream's topic, group_id, message_id) come along.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries speak from WARNING; our own modules (services.*) and FastStream at the level.
    root.setLevel(max(level, logging.WARNING))
    for name in _FOREIGN:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
        foreign.setLevel(logging.NOTSET)
    logging.getLogger("services").setLevel(level)
    logging.getLogger("faststream").setLevel(level)
    structlog.contextvars.bind_contextvars(service=service)


def broker_logger() -> logging.Logger:
    """The logger FastStream's Kafka broker is given, so it does not make its own (which
    prints coloured lines to stdout past this pipeline)."""
    return logging.getLogger("faststream.access.kafka")


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
