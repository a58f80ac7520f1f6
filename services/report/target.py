"""Which stack the report reads: the environment's settings, or a running `innomatch dev`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from services.infra.settings import Settings


@dataclass(frozen=True)
class Target:
    kafka_bootstrap: str
    needs_url: str | None
    operator_token: str | None
    fetch_max_wait_ms: int


def resolve(dev_json: Path, needs_url: str | None = None) -> Target:
    """INNOMATCH_* settings when INNOMATCH_KAFKA_BOOTSTRAP is set; otherwise the addresses
    `innomatch dev` wrote to dev_json, when it exists; otherwise the settings' defaults."""
    # The report reads addresses and the operator token only; the production checks on the
    # token secret guard the services, which the report is not.
    settings = Settings(mode="development")
    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    target = Target(
        settings.kafka_bootstrap, settings.url_of("needs"), token, settings.kafka_fetch_max_wait_ms
    )
    if "INNOMATCH_KAFKA_BOOTSTRAP" not in os.environ and dev_json.exists():
        info = json.loads(dev_json.read_text())
        target = Target(
            info["kafka_bootstrap"],
            info.get("services", {}).get("needs"),
            info.get("operator_token") or token,
            settings.kafka_fetch_max_wait_ms,
        )
    if needs_url is not None:
        target = Target(target.kafka_bootstrap, needs_url, target.operator_token, target.fetch_max_wait_ms)
    return target
