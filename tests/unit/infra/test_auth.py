from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.infra.auth import Principal, Tokens
from services.infra.errors import Unauthenticated
from services.infra.settings import Settings

SETTINGS = Settings(mode="development", operator_token="the-operator-token-of-this-test")


def test_issued_tokens_verify_to_their_principal() -> None:
    tokens = Tokens(SETTINGS)
    for principal in (Principal("supplier", "abc"), Principal("buyer_group", "g-1")):
        assert tokens.verify(tokens.issue(principal).token) == principal


def test_the_operator_is_the_configured_token_only() -> None:
    tokens = Tokens(SETTINGS)
    assert tokens.verify("the-operator-token-of-this-test").is_operator
    forged = jwt.encode(
        {"sub": "operator", "iss": "innomatch", "iat": 1}, SETTINGS.token_secret.get_secret_value()
    )
    with pytest.raises(Unauthenticated):
        tokens.verify(forged)


def test_tokens_signed_with_another_key_or_tampered_are_refused() -> None:
    tokens = Tokens(SETTINGS)
    other = Tokens(Settings(mode="development", token_secret="another-secret-of-at-least-32-chars!"))
    with pytest.raises(Unauthenticated):
        tokens.verify(other.issue(Principal("supplier", "abc")).token)
    good = tokens.issue(Principal("supplier", "abc")).token
    with pytest.raises(Unauthenticated):
        tokens.verify(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    with pytest.raises(Unauthenticated):
        tokens.verify("not-a-token")


def test_principal_names_round_trip_and_unknown_kinds_are_refused() -> None:
    assert Principal.parse("supplier:42") == Principal("supplier", "42")
    assert Principal.parse("buyer_group:g").name == "buyer_group:g"
    assert Principal.parse("operator").is_operator
    for bad in ("supplier:", "admin:1", ""):
        with pytest.raises(ValueError):
            Principal.parse(bad)
    assert Principal("supplier", "1").is_supplier("1")
    assert not Principal("supplier", "1").is_supplier("2")
    assert not Principal("buyer_group", "1").is_supplier("1")


def test_tokens_carry_their_lifetime_and_expire() -> None:
    issued = Tokens(SETTINGS).issue(Principal("supplier", "abc"))
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] in range(90 * 86400, 90 * 86400 + 2)
    assert issued.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert issued.expires_at - datetime.now(UTC) > timedelta(days=89)

    short = Tokens(Settings(mode="development", token_ttl_days=1 / 86400))  # one second
    token = short.issue(Principal("supplier", "abc")).token
    assert short.verify(token) == Principal("supplier", "abc")
    time.sleep(2.1)
    with pytest.raises(Unauthenticated):
        short.verify(token)


def test_a_token_without_expiry_is_refused() -> None:
    secret = SETTINGS.token_secret.get_secret_value()
    forever = jwt.encode({"sub": "supplier:abc", "iss": "innomatch", "iat": int(time.time())}, secret)
    with pytest.raises(Unauthenticated):
        Tokens(SETTINGS).verify(forever)
