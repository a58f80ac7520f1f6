"""Where webhooks may point: https in production, and never at this machine, a private
network, a link-local address or a cloud metadata service (a webhook must not become a way to
reach internal services).

The rules (`refusal`) judge one IP address. They are applied twice: to every address a URL's
host resolves to when the URL is saved (`check_webhook_url`), and at delivery, where the
notifier connects only to an address that passed them (a host literal is checked before the
call, a host name in the notifier's resolver), so a name that resolves elsewhere later (DNS
rebinding) gains nothing.

- Link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses (169.254.169.254,
  fd00:ec2::254, 100.100.100.200) are always refused, as are addresses that are not unicast
  (0.0.0.0/8, multicast, 240.0.0.0/4) and local-use NAT64 (64:ff9b:1::/48), whose embedded
  address cannot be read back.
- An IPv6 address that carries an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-translated
  ::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo
  2001::/32) is judged by the IPv4 address it reaches.
- Loopback and private addresses (anything not globally routable) pass only with
  INNOMATCH_WEBHOOK_ALLOW_PRIVATE (development and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from fastapi.exceptions import RequestValidationError

from services.infra.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESOLVE_TIMEOUT_S = 5.0

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Refused whatever the settings say.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_LINK_LOCAL = (_V4("169.254.0.0/16"), _V6("fe80::/10"))
_NOT_UNICAST = (
    _V4("0.0.0.0/8"),  # "this network": 0.0.0.0 reaches this machine on Linux
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved and broadcast
    _V6("::/128"),
    _V6("ff00::/8"),  # multicast
    _V6("fec0::/10"),  # deprecated site-local
    _V6("64:ff9b:1::/48"),  # local-use NAT64: the embedded address's position varies
)
# IPv6 forms that carry an IPv4 address in their last 32 bits.
_LOW_32 = (
    _V6("::ffff:0:0/96"),  # IPv4-mapped
    _V6("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    _V6("64:ff9b::/96"),  # NAT64
    _V6("::/96"),  # IPv4-compatible (deprecated); :: and ::1 are handled before
)


class WebhookRefused(ValueError):
    """A webhook URL that may not be called; `permanent` is False when the host did not
    resolve (DNS may answer later)."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        self.permanent = permanent


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through a transition mechanism, if any."""
    if not isinstance(ip, ipaddress.IPv6Address) or ip in _V6("::/127"):
        return None
    if any(ip in net for net in _LOW_32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client, de-obfuscated
    return None


def refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not connect to `ip` (a phrase naming it), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(int(ip))
    if ip in _METADATA or any(ip in net for net in _LINK_LOCAL):
        return f"a link-local or cloud metadata address ({ip}), never allowed"
    if any(ip in net for net in _NOT_UNICAST):
        return f"a reserved or non-unicast address ({ip})"
    inner = embedded_ipv4(ip)
    if inner is not None:
        why = refusal(inner, allow_private=allow_private)
        return f"{ip}, which carries {why}" if why else None
    if not ip.is_global and not allow_private:
        return f"a loopback or private address ({ip})"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url_form(url: str, settings: Settings) -> str:
    """Check what the URL says without resolving it: the scheme, and the host when it is an
    IP address. Returns the host; raises WebhookRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("must be an http or https URL")
    if settings.mode == "production" and parts.scheme != "https":
        raise WebhookRefused("must be an https URL")
    host = parts.hostname
    ip = _literal(host)
    if ip is not None:
        why = refusal(ip, allow_private=settings.webhook_allow_private)
        if why:
            raise WebhookRefused(f"points at {why}")
    return host


async def check_webhook_url(url: str, settings: Settings) -> None:
    """Raise WebhookRefused unless `url` may be called under `settings`: its form, and every
    address its host resolves to now. A host that does not resolve is refused in
    production; with private addresses allowed it passes here and is judged at delivery.
    """
    host = check_url_form(url, settings)
    if _literal(host) is not None:
        return
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_S
        )
    except (OSError, UnicodeError, TimeoutError) as exc:
        if settings.webhook_allow_private:
            return
        raise WebhookRefused(f"the host {host} does not resolve", permanent=False) from exc
    for ip in sorted({ipaddress.ip_address(info[4][0]) for info in infos}, key=str):
        why = refusal(ip, allow_private=settings.webhook_allow_private)
        if why:
            raise WebhookRefused(f"resolves to {why}")


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
