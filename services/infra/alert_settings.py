"""The HTTP shapes of alert settings, the same for suppliers and buyer groups: the patch a
caller sends and the view a caller gets (the webhook secret is write-only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from services.contracts.events import AlertSettings


class AlertsPatch(BaseModel):
    """The alert settings to change; null clears webhook_url, webhook_secret or email."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    webhook_secret: str | None = None
    email: str | None = None
    language: str | None = None
    mode: str | None = None
    min_score: float | None = None


class PublicAlertSettings(BaseModel):
    """Alert settings as shown to callers: the webhook secret is write-only."""

    webhook_url: str | None
    email: str | None
    language: str
    mode: str
    min_score: float
    has_webhook_secret: bool

    @classmethod
    def of(cls, alerts: AlertSettings) -> PublicAlertSettings:
        return cls(
            webhook_url=alerts.webhook_url,
            email=alerts.email,
            language=alerts.language,
            mode=alerts.mode,
            min_score=alerts.min_score,
            has_webhook_secret=alerts.webhook_secret is not None,
        )
