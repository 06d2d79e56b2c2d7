"""Metrics, scraped the way Prometheus does after real traffic.

- The gateway's `GET /metrics`: requests, latency and status codes per integration and route,
  webhook authentication failures (bearer and ElevenLabs), dedup hits and 503s per dependency,
  with bounded labels (route templates; no number, call id or raw path).
- A worker process with `HAPP_METRICS_PORT`, after whole simulated calls (a short one retried):
  the Temporal SDK's metrics and the call metrics `OutboundCall` emits.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from api.app import create_app
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from simulator.calls import Play, SimCall
from tests.e2e.call_stack import CallStack, phone, start_call_stack
from tests.e2e.gw_integration import gw

ADMIN = "admin-" + uuid.uuid4().hex
HOOK = "hook-" + uuid.uuid4().hex
SIGNING = "wsec_" + uuid.uuid4().hex
PHONE = "+380991234567"


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    return sum(
        s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
async def gateway(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a database of its own, with Temporal unreachable (a closed port)."""
    database = f"metrics_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    settings = Settings(
        DATABASE_URL=pg_url.rsplit("/", 1)[0] + f"/{database}",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        HAPP_ADMIN_TOKEN=ADMIN,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    integrations = {**discover_integrations(["sofa"]), "gw": gw}
    app = create_app(settings, integrations, sink=CaptureSink())
    runtime = app.state.runtime
    await runtime.start()
    for integration in integrations.values():
        await prepare_integration(runtime.resources, integration)
        await runtime.resources.creds(integration.name).set_many(
            {"WEBHOOK_TOKEN": HOOK, "ELEVENLABS_WEBHOOK_SECRET": SIGNING}
        )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as http:
        yield http
    await runtime.stop()


async def test_gateway_metrics_after_real_requests(gateway: httpx.AsyncClient) -> None:
    wrong_token = {"Authorization": "Bearer not-the-token"}
    bad_signature = {"ElevenLabs-Signature": f"t={int(time.time())},v0={'0' * 64}"}
    # Webhook authentication failures, both schemes, on a handler route and on the call webhooks.
    assert (await gateway.post("/gw/secure", json={"text": "x"}, headers=wrong_token)).status_code == 401
    assert (await gateway.post("/gw/signed", json={"text": "x"}, headers=bad_signature)).status_code == 401
    postcall = {"type": "post_call_transcription", "event_timestamp": 1, "data": {}}
    resp = await gateway.post("/sofa/webhook/agent-postcall", json=postcall, headers=bad_signature)
    assert resp.status_code == 401, resp.text
    resp = await gateway.post(
        "/sofa/webhook/call-originate", json={"phone_number": PHONE}, headers=wrong_token
    )
    assert resp.status_code == 401, resp.text
    # A dedup hit: the same key twice.
    key = uuid.uuid4().hex
    first = await gateway.post("/gw/once-inline", json={"id": key, "text": "one"})
    again = await gateway.post("/gw/once-inline", json={"id": key, "text": "two"})
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers["x-happ-dedup"] == "hit"
    # 503s: Temporal is down for a call start and for /health.
    resp = await gateway.post(
        "/sofa/webhook/call-originate",
        json={"phone_number": PHONE},
        headers={"Authorization": f"Bearer {HOOK}"},
    )
    assert resp.status_code == 503 and resp.json()["dependency"] == "Temporal", resp.text
    assert (await gateway.get("/health", headers={"Authorization": f"Bearer {ADMIN}"})).status_code == 503
    # Raw paths with ids and numbers in them: only their templates may be labels.
    admin = {"Authorization": f"Bearer {ADMIN}"}
    await gateway.get("/sofa/calls/c_secretcallid42", headers=admin)
    assert (await gateway.get(f"/sofa/no-such-route/{PHONE}")).status_code == 404

    scrape = await gateway.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    found = samples(text)

    requests = "happ_http_requests_total"
    assert (
        value(
            found, requests, integration="gw", handler="secure", route="/secure", method="POST", status="401"
        )
        == 1
    )
    assert (
        value(found, requests, integration="gw", handler="once-inline", route="/once-inline", status="200")
        == 2
    )
    assert value(found, requests, integration="sofa", route="/webhook/call-originate", status="503") == 1
    assert value(found, requests, integration="-", handler="health", route="/health", status="503") == 1
    assert value(found, requests, integration="sofa", route="/calls/{call_id}", method="GET") == 1
    assert value(found, requests, integration="sofa", route="unmatched", status="404") == 1
    latency = "happ_http_request_duration_seconds_count"
    assert value(found, latency, integration="gw", route="/once-inline", method="POST") == 2
    assert any(
        s.name == "happ_http_request_duration_seconds_bucket" and s.labels["le"] == "0.1" for s in found
    )

    failures = "happ_webhook_auth_failures_total"
    assert value(found, failures, integration="gw", handler="secure", scheme="bearer") == 1
    assert value(found, failures, integration="gw", handler="signed", scheme="elevenlabs") == 1
    assert value(found, failures, integration="sofa", handler="agent_postcall", scheme="elevenlabs") == 1
    assert value(found, failures, integration="sofa", handler="call_originate", scheme="bearer") == 1
    assert value(found, failures) == 4  # the admin route's answer is not a webhook's

    assert value(found, "happ_dedup_hits_total", integration="gw", handler="once-inline") == 1
    assert value(found, "happ_dedup_hits_total") == 1

    unavailable = "happ_dependency_unavailable_total"
    assert value(found, unavailable, integration="sofa", handler="call_originate", dependency="Temporal") == 1
    assert value(found, unavailable, integration="-", handler="health", dependency="Temporal") == 1

    # Bounded labels: no raw path, number or call id; no scrape of /metrics itself.
    for secret in ("c_secretcallid42", PHONE, PHONE.lstrip("+"), "no-such-route", key):
        assert secret not in text
    assert 'route="/metrics"' not in text


async def test_a_scrape_is_not_in_the_openapi_document(gateway: httpx.AsyncClient) -> None:
    assert "/metrics" not in (await gateway.get("/openapi.json")).json()["paths"]


# The worker's Prometheus endpoint -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def calls(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url,
        tmp_path_factory.mktemp("metrics-call-logs"),
        None,
        handling={"retry_delays_seconds": [1], "max_attempts": 3},
    )
    # The first attempt of every call is short (retried after a second), the next one answered.
    played: dict[str, int] = {}

    def play(call: SimCall) -> None:
        played[call.call_id] = played.get(call.call_id, 0) + 1
        outcome = Play.short(2) if played[call.call_id] == 1 else Play.answered(30, talk_seconds=0.2)
        stack.sims.play_in_background(call, outcome)

    stack.sims.voice.on_originate = play
    try:
        yield stack
    finally:
        await stack.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def test_worker_serves_sdk_and_call_metrics(calls: CallStack, tmp_path: Path) -> None:
    port = free_port()
    calls.env["HAPP_METRICS_PORT"] = str(port)
    worker = calls.start_worker()
    numbers = [phone(n) for n in range(901, 903)]
    calls.add_leads(numbers)
    call_ids = await calls.originate(numbers)
    rows = await calls.until_all(call_ids, {"completed"}, seconds=120)
    assert all(r["attempt"] == 2 for r in rows), rows

    # Metrics are exported as they are recorded; the call's last ones may take a moment.
    text = ""
    for _ in range(50):
        text = scrape(port)
        if value(samples(text), "happ_calls_completed_total", integration="sofa") >= 2:
            break
        await asyncio.sleep(0.2)
    found = samples(text)
    assert worker.proc.poll() is None

    # The SDK's own metrics (its counters have no `_total` in the text; the parser adds it).
    for sdk in (
        "temporal_workflow_completed",
        "temporal_activity_execution_latency_count",
        "temporal_request",
    ):
        assert f"\n{sdk}{{" in text, sdk
    assert value(found, "temporal_workflow_completed_total", workflow_type="OutboundCall") == 2

    # The calls' metrics, with the integration label and the SDK's labels.
    call = {"integration": "sofa", "workflow_type": "OutboundCall", "task_queue": "happ-sofa"}
    assert value(found, "happ_calls_started_total", **call) == 2
    assert value(found, "happ_calls_completed_total", **call) == 2
    for ended in ("exhausted", "failed", "cancelled"):
        assert value(found, f"happ_calls_{ended}_total", **call) == 0
    assert value(found, "happ_call_retries_total", outcome="short", **call) == 2
    assert value(found, "happ_call_attempts_count", status="completed", **call) == 2
    assert value(found, "happ_call_attempts_sum", status="completed", **call) == 4
    assert value(found, "happ_call_attempts_bucket", status="completed", le="2", **call) == 2
    seconds = "happ_call_status_seconds_count"
    for status in ("queued", "dialing", "in_progress", "waiting_postcall", "analyzing", "scheduled"):
        assert value(found, seconds, status=status, **call) >= 2, status
    # Each call waited about a second in `scheduled` for its retry.
    assert value(found, "happ_call_status_seconds_sum", status="scheduled", **call) >= 2
    assert value(found, "happ_call_status_seconds_bucket", status="completed", **call) == 0
    for call_id in call_ids:
        assert call_id not in text
