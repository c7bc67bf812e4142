"""Settings are validated at start-up, with one clear line per bad variable; secrets are masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank.settings import SettingsError, as_libpq, load_settings


def test_defaults_are_valid() -> None:
    settings = load_settings()
    assert settings.local_timezone == "Asia/Tokyo"
    assert settings.cors_origins == []


def test_each_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_MAX_BODY_BYTES", "12")
    monkeypatch.setenv("BANK_LOCAL_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("BANK_DATABASE_URL", "mysql://root@localhost/bank")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "BANK_MAX_BODY_BYTES: Input should be greater than or equal to 1024" in message
    assert "BANK_LOCAL_TIMEZONE: Value error, unknown time zone 'Mars/Olympus'" in message
    assert "BANK_DATABASE_URL: Value error, PostgreSQL only" in message


def test_database_password_is_masked() -> None:
    settings = load_settings(database_url="postgresql://bank:s3cret-pw@db.internal/bank")
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings.async_database_url())
    assert "s3cret-pw" in as_libpq(settings.async_database_url())


def test_cors_origins_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_CORS_ORIGINS", "https://a.example.jp, https://b.example.jp")
    assert load_settings().cors_origins == ["https://a.example.jp", "https://b.example.jp"]
    monkeypatch.setenv("BANK_CORS_ORIGINS", "a.example.jp")
    with pytest.raises(SettingsError, match="BANK_CORS_ORIGINS"):
        load_settings()


@given(st.text(max_size=40))
def test_any_database_url_is_accepted_only_if_postgres(raw: str) -> None:
    try:
        settings = load_settings(database_url=raw)
    except SettingsError as exc:
        message = str(exc)
    else:
        assert settings.async_database_url().drivername == "postgresql+asyncpg"
        return
    assert "BANK_DATABASE_URL" in message
    if len(raw) >= 8:
        assert raw not in message  # a URL can carry a password: never echo it
