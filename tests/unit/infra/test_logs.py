"""Every logger of a service process, ours and the libraries', writes in one format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from services.infra.logs import broker_logger, configure_logging, get_logger
from services.infra.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _configure(fmt: str) -> io.StringIO:
    out = io.StringIO()
    configure_logging(Settings(mode="development", log_format=fmt), "matcher", stream=out)
    return out


def test_faststream_and_uvicorn_records_come_out_as_one_json_line_each() -> None:
    out = _configure("json")
    broker_logger().error("handler failed", extra={"topic": "innomatch.needs.v1"})
    logging.getLogger("faststream").warning("broker reconnecting")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    logging.getLogger("aiokafka").warning("Unable connect to node")
    lines = _json_lines(out)
    assert [(x["event"], x["level"], x["logger"]) for x in lines] == [
        ("handler failed", "error", "faststream.access.kafka"),
        ("broker reconnecting", "warning", "faststream"),
        ("Exception in ASGI application", "error", "uvicorn.error"),
        ("Unable connect to node", "warning", "aiokafka"),
    ]
    assert all(x["service"] == "matcher" and x["timestamp"] for x in lines)
    assert lines[0]["topic"] == "innomatch.needs.v1"


def test_our_own_lines_share_the_format() -> None:
    out = _configure("json")
    get_logger("services.matcher.engine").info("need_ranked", need_id="n1", matches=3)
    (line,) = _json_lines(out)
    assert line["event"] == "need_ranked" and line["level"] == "info"
    assert line["need_id"] == "n1" and line["matches"] == 3 and line["service"] == "matcher"
    assert line["logger"] == "services.matcher.engine"


def test_faststream_task_callbacks_are_debug_and_libraries_info_is_quiet() -> None:
    out = _configure("json")
    access = broker_logger()
    for n in range(5):
        access.info(f"callback for Task-{n} is being executed...")
    logging.getLogger("faststream").info("callback for Task-99 is being executed...")
    logging.getLogger("aiokafka").info("Joined group")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    access.info("subscriber started")
    assert [x["event"] for x in _json_lines(out)] == ["subscriber started"]


def test_console_format_is_one_readable_line_without_json() -> None:
    out = _configure("console")
    broker_logger().warning("handler slow")
    get_logger("services.needs.api").info("need_published", need_id="n1")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "handler slow" in lines[0] and "warn" in lines[0]
    assert "need_published" in lines[1] and "need_id=n1" in lines[1]
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert "\x1b[" not in out.getvalue()  # no colours when not on a terminal
