from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.infra.settings import DEV_TOKEN_SECRET, Settings

STRONG_SECRET = "x" * 40
OPERATOR = "o" * 30


def test_production_refuses_the_development_token_secret() -> None:
    with pytest.raises(ValidationError, match="INNOMATCH_TOKEN_SECRET is the development secret"):
        Settings(mode="production", operator_token=OPERATOR)


def test_production_requires_an_operator_token_and_a_long_secret() -> None:
    with pytest.raises(ValidationError, match="INNOMATCH_OPERATOR_TOKEN"):
        Settings(mode="production", token_secret=STRONG_SECRET)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(mode="production", token_secret="short", operator_token=OPERATOR)


def test_development_mode_accepts_the_development_secret() -> None:
    settings = Settings(mode="development")
    assert settings.token_secret.get_secret_value() == DEV_TOKEN_SECRET


def test_settings_come_from_innomatch_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNOMATCH_MODE", "production")
    monkeypatch.setenv("INNOMATCH_TOKEN_SECRET", STRONG_SECRET)
    monkeypatch.setenv("INNOMATCH_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("INNOMATCH_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("INNOMATCH_SUPPLIERS_PORT", "9999")
    settings = Settings()
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.port_of("suppliers") == 9999
    assert settings.url_of("needs") == "http://127.0.0.1:8010"
    assert "x" * 40 not in repr(settings)
