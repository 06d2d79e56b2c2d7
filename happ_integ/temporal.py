"""Temporal names every process shares, and the client they connect with (pydantic on the wire).

    client = await connect_settings(settings)      # TEMPORAL_ADDRESS, namespace, TLS/API key, payload encryption
    integration.task_queue                         # "happ-sofa", from task_queue_for("sofa")

The custom search attributes below are what an operator filters on in the Web UI; `happ dev` and
the compose setup register exactly these. The workflow ids are here too, so workflow code can name
its children and peers without importing client code; every call that starts, signals, updates
or queries one of our workflows lives in `control.client`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

if TYPE_CHECKING:
    from happ_integ.settings import Settings

INTEGRATION_KEY = SearchAttributeKey.for_keyword("Integration")
HANDLER_KEY = SearchAttributeKey.for_keyword("HandlerName")
CALL_STATUS_KEY = SearchAttributeKey.for_keyword("CallStatus")
CALL_ATTEMPT_KEY = SearchAttributeKey.for_int("CallAttempt")
# On a campaign's calls and on the Campaign workflow itself: `CampaignId="cmp_…"` finds them.
CAMPAIGN_ID_KEY = SearchAttributeKey.for_keyword("CampaignId")
SEARCH_ATTRIBUTE_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    INTEGRATION_KEY,
    HANDLER_KEY,
    CALL_STATUS_KEY,
    CALL_ATTEMPT_KEY,
    CAMPAIGN_ID_KEY,
)


def search_attribute_kinds() -> dict[str, str]:
    """`{"Integration": "Keyword", …, "CallAttempt": "Int"}`: the spelling `temporal` CLIs register."""
    names = {
        SearchAttributeIndexedValueType.KEYWORD: "Keyword",
        SearchAttributeIndexedValueType.INT: "Int",
    }
    return {key.name: names[key.indexed_value_type] for key in SEARCH_ATTRIBUTE_KEYS}


class HandlerRunInput(BaseModel):
    """What a `HandlerRun` workflow starts with: the handler and its payload as JSON."""

    integration: str
    handler: str
    payload: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None


class HandlerRunResult(BaseModel):
    response: dict[str, Any]


def task_queue_for(integration: str) -> str:
    return f"happ-{integration}"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def run_key(key: str) -> str:
    """A key as it may appear in a workflow id: itself when short and plain, else a digest of it.

    Workflow ids are limited (about 1,000 bytes) and show in the Web UI; a long or odd dedup key
    (an `Idempotency-Key` header, a CRM record id) is hashed so any key makes a valid, stable id.
    """
    if _PLAIN_KEY.fullmatch(key):
        return key
    return "h-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def handler_workflow_id(integration: str, handler: str, key: str) -> str:
    return f"{integration}:handler:{handler}:{run_key(key)}"


def call_workflow_id(integration: str, call_id: str) -> str:
    return f"{integration}:call:{call_id}"


def queue_workflow_id(integration: str) -> str:
    return f"{integration}:call-queue"


def campaign_workflow_id(integration: str, campaign_id: str) -> str:
    return f"{integration}:campaign:{campaign_id}"


def schedule_id(integration: str, handler: str) -> str:
    return f"{integration}:{handler}"


async def connect_client(
    address: str,
    namespace: str = "default",
    payload_key: str | None = None,
    *,
    tls: bool | TLSConfig | None = None,
    api_key: str | None = None,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client with pydantic payloads, encrypted when `payload_key` is given (see `happ_integ.codec`).

    `tls`/`api_key` authenticate to Temporal Cloud or a TLS frontend (None: TLS only with an API
    key); `runtime` is the SDK runtime whose telemetry (metrics) the client and its workers use,
    created before any client; `interceptors` are the tracing ones when tracing is on.
    """
    from happ_integ.codec import data_converter

    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter(payload_key),
        tls=tls,
        api_key=api_key,
        runtime=runtime,
        interceptors=list(interceptors),
    )


def _read_pem(name: str, path: Path) -> bytes:
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise RuntimeError(f"{name}={path}: cannot read the PEM file ({exc.strerror or exc})") from None
    if b"-----BEGIN" not in data:
        raise RuntimeError(f"{name}={path}: not a PEM file (no -----BEGIN line)")
    return data


def tls_config(settings: Settings) -> TLSConfig | None:
    """The TLS options from `TEMPORAL_TLS_CERT`/`TEMPORAL_TLS_KEY` (mTLS) and `TEMPORAL_TLS_CA`,
    or None when none is set (plain TCP, or TLS with the system roots when an API key is used)."""
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if (cert is None) != (key is None):  # Settings refuses this too; a copy built by hand might not
        raise RuntimeError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both, or neither")
    if cert is None and key is None and ca is None:
        return None
    return TLSConfig(
        client_cert=_read_pem("TEMPORAL_TLS_CERT", cert) if cert is not None else None,
        client_private_key=_read_pem("TEMPORAL_TLS_KEY", key) if key is not None else None,
        server_root_ca_cert=_read_pem("TEMPORAL_TLS_CA", ca) if ca is not None else None,
    )


async def connect_settings(settings: Settings, runtime: Runtime | None = None) -> Client:
    """The client every process (worker, API, CLI) connects with: address, namespace, TLS or API
    key, payload encryption, and tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. A worker passes
    the `runtime` it made for its metrics (`happ_integ.telemetry.temporal_runtime`)."""
    if not settings.temporal_address:
        raise RuntimeError(
            "TEMPORAL_ADDRESS is not set: run `happ dev`, or point TEMPORAL_ADDRESS at a Temporal frontend"
        )
    from happ_integ import telemetry

    key = settings.payload_key.get_secret_value() if settings.payload_key else None
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await connect_client(
        settings.temporal_address,
        settings.temporal_namespace,
        key,
        tls=tls_config(settings),
        api_key=api_key,
        runtime=runtime,
        interceptors=telemetry.temporal_interceptors(settings),
    )
