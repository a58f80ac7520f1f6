"""Where a webhook may point: the address rules, the checks of a saved URL, and the
notifier's resolver that hands the connector only addresses that passed them."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from services.infra.settings import Settings
from services.infra.webhooks import WebhookRefused, check_webhook_url, embedded_ipv4, refusal
from services.notifier.webhook import VettedResolver
from tests.receivers import FixedDns

PROD = Settings(token_secret="x" * 40, operator_token="o" * 30)
DEV = Settings(mode="development", webhook_allow_private=True)

NEVER = [
    "169.254.169.254",  # cloud metadata
    "169.254.170.2",  # ECS task metadata
    "169.254.1.1",  # link-local
    "100.100.100.200",  # Alibaba metadata
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fe80::1",
    "fe80::1%lo",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::169.254.1.1",
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "::a9fe:a9fe",  # IPv4-compatible
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:0:169.254.169.254",  # IPv4-translated
    "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo, client 169.254.169.254
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "224.0.0.1",
    "255.255.255.255",
    "ff02::1",
    "fec0::1",
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
]
PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "100.64.0.1",  # shared address space (CGNAT)
    "::1",
    "fd12:3456::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::7f00:1",
    "64:ff9b::10.0.0.1",
    "64:ff9b::127.0.0.1",
    "2002:c0a8:0001::1",  # 6to4 of 192.168.0.1
    "2002:7f00:1::1",
]
PUBLIC = ["8.8.8.8", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize("address", NEVER)
def test_link_local_metadata_and_non_unicast_are_refused_always(address: str) -> None:
    ip = ipaddress.ip_address(address)
    for allow_private in (False, True):
        assert refusal(ip, allow_private=allow_private), (address, allow_private)


@pytest.mark.parametrize("address", PRIVATE)
def test_loopback_and_private_need_allow_private(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert refusal(ip, allow_private=False)
    assert refusal(ip, allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) is None


def test_embedded_ipv4_of_each_transition_form() -> None:
    expect = {
        "::ffff:1.2.3.4": "1.2.3.4",
        "::ffff:0:1.2.3.4": "1.2.3.4",
        "::1.2.3.4": "1.2.3.4",
        "64:ff9b::1.2.3.4": "1.2.3.4",
        "2002:102:304::": "1.2.3.4",
        "2001:0:4136:e378:8000:63bf:fefd:fcfb": "1.2.3.4",
    }
    for v6, v4 in expect.items():
        assert embedded_ipv4(ipaddress.ip_address(v6)) == ipaddress.IPv4Address(v4), v6
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("2a00:1450::1")) is None


def test_the_reason_names_the_address() -> None:
    why = refusal(ipaddress.ip_address("64:ff9b::a9fe:a9fe"), allow_private=True)
    assert why is not None and "169.254.169.254" in why and "64:ff9b::a9fe:a9fe" in why


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/h",
        "https://10.1.2.3/h",
        "https://192.168.0.1/h",
        "https://[::1]/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://localhost/h",
    ],
)
def test_saving_a_private_webhook_is_refused_in_production(url: str) -> None:
    with pytest.raises(WebhookRefused, match="loopback or private"):
        asyncio.run(check_webhook_url(url, PROD))
    asyncio.run(check_webhook_url(url, DEV))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://[::a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://0.0.0.0:8040/",
    ],
)
def test_saving_a_link_local_or_metadata_webhook_is_refused_even_in_development(url: str) -> None:
    for settings in (PROD, DEV):
        with pytest.raises(WebhookRefused):
            asyncio.run(check_webhook_url(url.replace("http://", "https://"), settings))
    with pytest.raises(WebhookRefused, match=r"never allowed|non-unicast"):
        asyncio.run(check_webhook_url(url, DEV))


def test_production_wants_https_and_the_host_to_resolve() -> None:
    with pytest.raises(WebhookRefused, match="https"):
        asyncio.run(check_webhook_url("http://8.8.8.8/h", PROD))
    asyncio.run(check_webhook_url("https://8.8.8.8/h", PROD))
    with pytest.raises(WebhookRefused, match="does not resolve") as refused:
        asyncio.run(check_webhook_url("https://no-such-host.invalid/h", PROD))
    assert not refused.value.permanent
    # In development a name that does not resolve now is judged when it is called.
    asyncio.run(check_webhook_url("https://no-such-host.invalid/h", DEV))
    with pytest.raises(WebhookRefused, match="http or https"):
        asyncio.run(check_webhook_url("ftp://8.8.8.8/h", DEV))


async def test_the_resolver_returns_only_vetted_addresses() -> None:
    dns = FixedDns(
        {
            "hooks.example.se": ["93.184.216.34"],
            "rebound.example.se": ["93.184.216.34", "169.254.169.254"],
            "nat64.example.se": ["64:ff9b::a9fe:a9fe"],
            "lan.example.se": ["10.0.0.5"],
        }
    )
    strict = VettedResolver(allow_private=False, base=dns)
    assert [r["host"] for r in await strict.resolve("hooks.example.se", 443)] == ["93.184.216.34"]
    for name in ("rebound.example.se", "nat64.example.se", "lan.example.se"):
        with pytest.raises(WebhookRefused, match=name):
            await strict.resolve(name, 443)
    lenient = VettedResolver(allow_private=True, base=dns)
    assert [r["host"] for r in await lenient.resolve("lan.example.se", 80)] == ["10.0.0.5"]
    for name in ("rebound.example.se", "nat64.example.se"):
        with pytest.raises(WebhookRefused, match="never allowed"):
            await lenient.resolve(name, 80)
