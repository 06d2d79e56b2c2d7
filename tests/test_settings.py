"""Settings read the documented names from the environment and `.env`, and refuse placeholders."""

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
        HAPP_ADMIN_TOKEN="a" * 20,
        HAPP_SECRET_KEY="k" * 44,
        HAPP_PAYLOAD_KEY="p" * 44,
        DATABASE_URL="postgresql://u:pw@h/db",
        HAPP_SAAS_API_URL="http://saas",
    )
    seen = settings.for_handlers()
    assert seen.admin_token is None and seen.secret_key is None and seen.payload_key is None
    assert seen.database_url is None and seen.saas_api_url == "http://saas"
