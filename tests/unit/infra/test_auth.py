from __future__ import annotations

import jwt
import pytest

from services.infra.auth import Principal, Tokens
from services.infra.errors import Unauthenticated
from services.infra.settings import Settings

SETTINGS = Settings(mode="development", operator_token="the-operator-token-of-this-test")


def test_issued_tokens_verify_to_their_principal() -> None:
    tokens = Tokens(SETTINGS)
    for principal in (Principal("supplier", "abc"), Principal("buyer_group", "g-1")):
        assert tokens.verify(tokens.issue(principal)) == principal


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
        tokens.verify(other.issue(Principal("supplier", "abc")))
    good = tokens.issue(Principal("supplier", "abc"))
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
