"""Settings read the documented names from the environment and `.env`, and refuse placeholders
and guessable admin tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from happ_integ.settings import Settings


def test_lists_are_comma_separated_and_env_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HAPP_API_PORT=4000\nHAPP_INTEGRATIONS=sofa\nHAPP_LOG_FORMAT=json\n")
    monkeypatch.setenv("HAPP_INTEGRATIONS", "sofa, keycrm")
    monkeypatch.setenv("HAPP_CODEC_ORIGINS", "http://ui:8080,http://127.0.0.1:8233")
    settings = Settings()
    assert settings.api_port == 4000
    assert settings.integrations == ["sofa", "keycrm"]
    assert settings.codec_origins == ["http://ui:8080", "http://127.0.0.1:8233"]


@pytest.mark.parametrize("name", ["HAPP_ADMIN_TOKEN", "HAPP_SECRET_KEY", "HAPP_PAYLOAD_KEY"])
def test_placeholder_secrets_are_refused(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_handlers_never_see_the_master_keys() -> None:
    settings = Settings(
        HAPP_ADMIN_TOKEN="a" * 32,
        HAPP_SECRET_KEY="k" * 44,
        HAPP_PAYLOAD_KEY="p" * 44,
        DATABASE_URL="postgresql://u:pw@h/db",
        HAPP_SAAS_API_URL="http://saas",
    )
    seen = settings.for_handlers()
    assert seen.admin_token is None and seen.secret_key is None and seen.payload_key is None
    assert seen.database_url is None and seen.saas_api_url == "http://saas"


@pytest.mark.parametrize("token", ["x", "admin", "a" * 31])
def test_an_admin_token_shorter_than_32_characters_is_refused_naming_the_fix(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAPP_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "HAPP_ADMIN_TOKEN" in message and "at least 32" in message and "token_urlsafe" in message
    assert f"'{token}'" not in message, "the refused value is not echoed"


def test_an_admin_token_of_32_characters_or_more_is_taken() -> None:
    token = "t" * 32
    assert Settings(HAPP_ADMIN_TOKEN=token).require_admin_token() == token


def test_payload_encryption_is_on_unless_said_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().payload_encryption == "on"
    monkeypatch.setenv("HAPP_PAYLOAD_ENCRYPTION", "off")
    assert Settings().payload_encryption == "off"
    monkeypatch.setenv("HAPP_PAYLOAD_ENCRYPTION", "no")
    with pytest.raises(ValidationError, match="HAPP_PAYLOAD_ENCRYPTION"):
        Settings()
