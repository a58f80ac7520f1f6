"""Where webhooks may point: https in production, and never at this machine or a private
network (a webhook must not become a way to reach internal services)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from fastapi.exceptions import RequestValidationError

from services.infra.settings import Settings


class WebhookRefused(ValueError):
    """A webhook URL that may not be called; `permanent` is False when the host did not
    resolve (DNS may answer later)."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.permanent = permanent


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_webhook_url(url: str, settings: Settings) -> None:
    """Raise WebhookRefused unless `url` may be called under `settings`.

    Private, loopback and link-local addresses pass only with INNOMATCH_WEBHOOK_ALLOW_PRIVATE
    (development and tests). Checked when the setting is saved and again before each call,
    since what a name resolves to can change.
    """
    parts = urlsplit(url)
    if settings.mode == "production" and parts.scheme != "https":
        raise WebhookRefused("must be an https URL")
    if settings.webhook_allow_private:
        return
    host = parts.hostname or ""
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise WebhookRefused(f"the host {host} does not resolve", permanent=False) from exc
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    for ip in sorted(addresses, key=str):
        if not _is_public(ip):
            raise WebhookRefused(f"resolves to a loopback, private or link-local address ({ip})")


async def validate_webhook_setting(url: str | None, settings: Settings) -> None:
    """422 naming `alerts.webhook_url` when a saved alert setting points where it may not."""
    if url is None:
        return
    try:
        await check_webhook_url(url, settings)
    except WebhookRefused as exc:
        raise RequestValidationError(
            [{"loc": ("body", "alerts", "webhook_url"), "msg": str(exc), "type": "value_error"}]
        ) from exc
