"""Settings of every happ process, read from the environment and `.env`.

    from happ_integ.settings import Settings
    settings = Settings()          # HAPP_API_PORT=4000 in the environment wins over .env

The names are the ones in the README's table; `.env.example` documents each.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

NETHUNT_PUBLIC_URL = "https://nethunt.com/api/v1/zapier"
KEYCRM_PUBLIC_URL = "https://openapi.keycrm.app/v1"
ELEVENLABS_PUBLIC_URL = "https://api.elevenlabs.io"
MIN_ADMIN_TOKEN_CHARS = 32


class Settings(BaseSettings):
    """One typed view of the environment; unset means "let `happ dev` provide it"."""

    # hide_input_in_errors: a refused value (a short admin token, a malformed key) is a secret too.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    temporal_address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    # Where operators open the Temporal Web UI (e.g. https://temporal.example.com): the console links
    # each call to its workflow there. `happ dev` sets it to its own UI; unset, no link is shown.
    temporal_ui_url: str | None = Field(default=None, validation_alias="HAPP_TEMPORAL_UI_URL")
    # Temporal Cloud or a TLS frontend: a client certificate and its key (PEM files, mTLS), a CA to
    # verify the server with, and/or an API key. Every process connects with them.
    temporal_tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    temporal_tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")

    api_host: str = Field(default="127.0.0.1", validation_alias="HAPP_API_HOST")
    api_port: int = Field(default=3001, validation_alias="HAPP_API_PORT", ge=1, le=65535)
    # uvicorn's line per request; the gateway's own logs and /metrics already tell each request.
    api_access_log: bool = Field(default=False, validation_alias="HAPP_API_ACCESS_LOG")
    admin_token: SecretStr | None = Field(default=None, validation_alias="HAPP_ADMIN_TOKEN")
    secret_key: SecretStr | None = Field(default=None, validation_alias="HAPP_SECRET_KEY")

    saas_api_url: str | None = Field(default=None, validation_alias="HAPP_SAAS_API_URL")
    nethunt_api_url: str = Field(default=NETHUNT_PUBLIC_URL, validation_alias="HAPP_NETHUNT_API_URL")
    keycrm_api_url: str = Field(default=KEYCRM_PUBLIC_URL, validation_alias="HAPP_KEYCRM_API_URL")
    elevenlabs_api_url: str = Field(default=ELEVENLABS_PUBLIC_URL, validation_alias="HAPP_ELEVENLABS_API_URL")

    payload_key: SecretStr | None = Field(default=None, validation_alias="HAPP_PAYLOAD_KEY")
    # `happ api`, `happ worker` and the `happ` commands that talk to Temporal refuse to start
    # without HAPP_PAYLOAD_KEY (history would keep phone numbers readable) unless this says `off`.
    payload_encryption: Literal["on", "off"] = Field(default="on", validation_alias="HAPP_PAYLOAD_ENCRYPTION")
    codec_origins: Annotated[list[str], NoDecode] = Field(
        default=["http://127.0.0.1:8233", "http://localhost:8233", "http://localhost:8080"],
        validation_alias="HAPP_CODEC_ORIGINS",
    )

    llm_base_url: str | None = Field(default=None, validation_alias="HAPP_LLM_BASE_URL")
    llm_model: str | None = Field(default=None, validation_alias="HAPP_LLM_MODEL")
    llm_api_key: SecretStr | None = Field(default=None, validation_alias="HAPP_LLM_API_KEY")

    # ctx.http, integration code's own HTTP (the configured peers above are trusted as they are):
    # loopback, private and link-local addresses are refused unless allowed here (comma-separated
    # CIDRs or addresses), and an answer larger than the cap fails the request.
    http_allow_private: bool = Field(default=False, validation_alias="HAPP_HTTP_ALLOW_PRIVATE")
    http_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list, validation_alias="HAPP_HTTP_ALLOWED_NETWORKS"
    )
    http_max_response_bytes: int = Field(
        default=5 * 1024 * 1024, validation_alias="HAPP_HTTP_MAX_RESPONSE_BYTES", ge=1024
    )

    log_format: Literal["console", "json"] = Field(
        default_factory=lambda: "console" if sys.stderr.isatty() else "json",
        validation_alias="HAPP_LOG_FORMAT",
    )
    dev_temporal_port: int = Field(default=7233, validation_alias="HAPP_DEV_TEMPORAL_PORT", ge=1, le=65535)
    dev_ui_port: int = Field(default=8233, validation_alias="HAPP_DEV_UI_PORT", ge=1, le=65535)
    dev_pg_port: int = Field(default=55432, validation_alias="HAPP_DEV_PG_PORT", ge=1, le=65535)
    dev_simulator_port: int = Field(default=3002, validation_alias="HAPP_DEV_SIMULATOR_PORT", ge=1, le=65535)
    data_dir: Path = Field(default=Path(".happ"), validation_alias="HAPP_DATA_DIR")

    # NoDecode: comma-separated in the environment, not JSON.
    integrations: Annotated[list[str] | None, NoDecode] = Field(
        default=None, validation_alias="HAPP_INTEGRATIONS"
    )
    max_body_bytes: int = Field(default=1024 * 1024, validation_alias="HAPP_MAX_BODY_BYTES", ge=1024)
    # A campaign's recipients come in one request: up to 10,000 of them, with their variables.
    max_campaign_body_bytes: int = Field(
        default=16 * 1024 * 1024, validation_alias="HAPP_MAX_CAMPAIGN_BODY_BYTES", ge=1024
    )
    # The longest one database step may take (waiting for a connection, opening one, a statement)
    # before it fails as "PostgreSQL is unavailable" (503 + Retry-After, an activity retried).
    db_timeout_seconds: float = Field(default=5.0, validation_alias="HAPP_DB_TIMEOUT_SECONDS", gt=0, le=600)

    # Worker tuning, per integration's worker: slots for activities and workflow tasks, how many
    # workflow runs stay cached (sticky) in memory, and the pollers of each kind.
    worker_max_activities: int = Field(default=50, validation_alias="HAPP_WORKER_MAX_ACTIVITIES", ge=1)
    worker_max_workflow_tasks: int = Field(
        default=100, validation_alias="HAPP_WORKER_MAX_WORKFLOW_TASKS", ge=2
    )
    worker_cache_size: int = Field(default=1000, validation_alias="HAPP_WORKER_CACHE_SIZE", ge=0)
    worker_pollers: int = Field(default=5, validation_alias="HAPP_WORKER_POLLERS", ge=1)

    # Telemetry: the worker's Temporal SDK metrics (Prometheus) and OpenTelemetry traces.
    metrics_port: int | None = Field(default=None, validation_alias="HAPP_METRICS_PORT", ge=1, le=65535)
    metrics_host: str = Field(default="127.0.0.1", validation_alias="HAPP_METRICS_HOST")
    otel_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str | None = Field(default=None, validation_alias="OTEL_SERVICE_NAME")

    @field_validator("integrations", "codec_origins", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()] or None
        return value

    @field_validator("http_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "metrics_port",
        "otel_endpoint",
        "otel_service_name",
        "temporal_tls_cert",
        "temporal_tls_key",
        "temporal_tls_ca",
        "temporal_api_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `OTEL_EXPORTER_OTLP_ENDPOINT=` (compose passes `${VAR:-}`) means "not set", not "".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _cert_needs_its_key(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            given, missing = (
                ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
                if self.temporal_tls_key is None
                else ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CERT")
            )
            raise ValueError(
                f"{given} is set but {missing} is not: mTLS needs both the client certificate and its "
                "private key (PEM files); set both, or neither"
            )
        return self

    @field_validator("admin_token", "secret_key", "payload_key", "temporal_api_key")
    @classmethod
    def _refuse_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in {"", "changeme", "change-me"}:
            raise ValueError(
                "is a placeholder: set a real value, or unset it and let `happ dev` generate one"
            )
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # The admin token opens every admin route and the codec: it must not be guessable.
        length = len(value.get_secret_value().strip()) if value is not None else MIN_ADMIN_TOKEN_CHARS
        if 0 < length < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"is {length} characters long: use at least {MIN_ADMIN_TOKEN_CHARS} random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or unset it and let "
                "`happ dev` generate one"
            )
        return value

    def for_handlers(self) -> Settings:
        """`ctx.env`: a copy without what handler code must never hold (master key, admin token, DB URL)."""
        return self.model_copy(
            update={
                "admin_token": None,
                "secret_key": None,
                "llm_api_key": None,
                "payload_key": None,
                "database_url": None,
                "temporal_api_key": None,
            }
        )

    def require_admin_token(self) -> str:
        if self.admin_token is None:
            raise RuntimeError("HAPP_ADMIN_TOKEN is not set (happ dev generates one into HAPP_DATA_DIR)")
        return self.admin_token.get_secret_value()

    def require_secret_key(self) -> str:
        if self.secret_key is None:
            raise RuntimeError("HAPP_SECRET_KEY is not set (happ dev generates one into HAPP_DATA_DIR)")
        return self.secret_key.get_secret_value()
