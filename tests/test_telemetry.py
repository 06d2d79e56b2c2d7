"""Telemetry: Temporal connection options, the worker's SDK runtime, and OpenTelemetry tracing.

- `TEMPORAL_TLS_CERT`/`TEMPORAL_TLS_KEY`/`TEMPORAL_TLS_CA`/`TEMPORAL_API_KEY` reach
  `Client.connect` from every process's `connect_settings`; a cert without its key is refused.
- Tracing is off (nothing of OpenTelemetry imported) unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
- With tracing on (an in-memory exporter): the gateway's request span, the client's start, the
  workflow's and its activities' spans share one trace and carry `happ.trace_id`, the id the
  logs carry (the request id; a workflow started elsewhere: its workflow id).
- The OTLP/HTTP exporter really sends to `{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` (a small
  receiver on loopback, the exporter in a process of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError
from temporalio.client import Client

from api.app import create_app
from happ_integ import telemetry
from happ_integ.embedded import EmbeddedTemporal
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from happ_integ.temporal import HandlerRunInput, HandlerRunResult, connect_settings, tls_config
from simulator.calls import Play
from tests.e2e.call_stack import phone, start_call_stack
from tests.e2e.gw_integration import gw
from worker import build_workers
from workflows.handler_run import HandlerRun

ROOT = Path(__file__).resolve().parent.parent
PEM_CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _no_outside_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither a developer's `.env` nor the environment decides what these tests see."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "HAPP_METRICS_PORT",
        "TEMPORAL_TLS_CERT",
        "TEMPORAL_TLS_KEY",
        "TEMPORAL_TLS_CA",
        "TEMPORAL_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


# Temporal Cloud and TLS servers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing"),
    [("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"), ("TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CERT")],
)
def test_a_cert_without_its_key_is_refused(given: str, missing: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=f"{given} is set but {missing} is not"):
        Settings(**{given: str(tmp_path / "client.pem")})


def test_tls_config_reads_the_pem_files(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    (tmp_path / "client.key").write_bytes(PEM_KEY)
    (tmp_path / "ca.pem").write_bytes(PEM_CERT)
    settings = Settings(
        TEMPORAL_TLS_CERT=str(tmp_path / "client.pem"),
        TEMPORAL_TLS_KEY=str(tmp_path / "client.key"),
        TEMPORAL_TLS_CA=str(tmp_path / "ca.pem"),
    )
    tls = tls_config(settings)
    assert tls is not None
    assert tls.client_cert == PEM_CERT and tls.client_private_key == PEM_KEY
    assert tls.server_root_ca_cert == PEM_CERT
    assert tls_config(Settings()) is None
    only_ca = tls_config(Settings(TEMPORAL_TLS_CA=str(tmp_path / "ca.pem")))
    assert only_ca is not None and only_ca.client_cert is None and only_ca.server_root_ca_cert == PEM_CERT


def test_unreadable_or_non_pem_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("not a key")
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    missing = Settings(
        TEMPORAL_TLS_CERT=str(tmp_path / "nope.pem"), TEMPORAL_TLS_KEY=str(tmp_path / "key.txt")
    )
    with pytest.raises(RuntimeError, match=r"TEMPORAL_TLS_CERT=.*nope\.pem: cannot read"):
        tls_config(missing)
    wrong = Settings(
        TEMPORAL_TLS_CERT=str(tmp_path / "client.pem"), TEMPORAL_TLS_KEY=str(tmp_path / "key.txt")
    )
    with pytest.raises(RuntimeError, match=r"TEMPORAL_TLS_KEY=.*key\.txt: not a PEM file"):
        tls_config(wrong)


def test_api_key_is_secret_and_empty_values_are_unset() -> None:
    settings = Settings(TEMPORAL_API_KEY="key-123", OTEL_EXPORTER_OTLP_ENDPOINT="", HAPP_METRICS_PORT="")
    assert "key-123" not in repr(settings)
    assert settings.for_handlers().temporal_api_key is None
    assert settings.otel_endpoint is None and settings.metrics_port is None
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(TEMPORAL_API_KEY="changeme")


async def test_connect_settings_passes_tls_api_key_and_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "client.pem").write_bytes(PEM_CERT)
    (tmp_path / "client.key").write_bytes(PEM_KEY)
    seen: dict[str, Any] = {}

    async def fake_connect(target: str, **kwargs: Any) -> str:
        seen.update(kwargs, target=target)
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    settings = Settings(
        TEMPORAL_ADDRESS="ns.a1b2c.tmprl.cloud:7233",
        TEMPORAL_NAMESPACE="ns.a1b2c",
        TEMPORAL_TLS_CERT=str(tmp_path / "client.pem"),
        TEMPORAL_TLS_KEY=str(tmp_path / "client.key"),
        TEMPORAL_API_KEY="key-123",
    )
    runtime = object()
    assert await connect_settings(settings, runtime) == "client"  # type: ignore[arg-type]
    assert seen["target"] == "ns.a1b2c.tmprl.cloud:7233" and seen["namespace"] == "ns.a1b2c"
    assert seen["tls"].client_cert == PEM_CERT and seen["tls"].client_private_key == PEM_KEY
    assert seen["api_key"] == "key-123" and seen["runtime"] is runtime
    assert seen["interceptors"] == []  # tracing is off

    seen.clear()
    await connect_settings(Settings(TEMPORAL_ADDRESS="localhost:7233"))
    assert seen["tls"] is None and seen["api_key"] is None and seen["runtime"] is None


def test_worker_runtime_only_with_a_metrics_port() -> None:
    assert telemetry.temporal_runtime(Settings()) is None
    port = str(free_port())
    first = telemetry.temporal_runtime(Settings(HAPP_METRICS_PORT=port))
    assert first is not None and telemetry.temporal_runtime(Settings(HAPP_METRICS_PORT=port)) is first


def test_nothing_of_opentelemetry_is_loaded_while_tracing_is_off(tmp_path: Path) -> None:
    script = """
import sys
from api.app import create_app
from happ_integ.integration import discover_integrations
from happ_integ.settings import Settings
from happ_integ.temporal import connect_settings
import worker
settings = Settings(HAPP_LOG_FORMAT="json")
app = create_app(settings, discover_integrations(["sofa"]))
names = [m.cls.__name__ for m in app.user_middleware]
assert names[:2] == ["SenderTokenQuery", "MetricsMiddleware"] and "RequestTraceMiddleware" not in names, names
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation",
    "opentelemetry.exporter", "temporalio.contrib.opentelemetry")))
assert not loaded, loaded
print("ok")
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# Tracing, in process --------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(telemetry.trace_id_processor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_test_provider(provider)
    yield exporter
    telemetry.use_test_provider(None)


@dataclass
class Traced:
    http: httpx.AsyncClient
    client: Client
    resources: Resources
    capture: CaptureSink


@pytest.fixture
async def traced(pg_url: str, spans: InMemorySpanExporter) -> AsyncIterator[Traced]:
    """Gateway, worker and Temporal dev server of their own, with tracing into `spans`."""
    database = f"traces_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    temporal = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
    temporal.start()
    settings = Settings(
        DATABASE_URL=pg_url.rsplit("/", 1)[0] + f"/{database}",
        TEMPORAL_ADDRESS=temporal.address,
        HAPP_ADMIN_TOKEN="admin-" + uuid.uuid4().hex,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    integrations = {**discover_integrations(["example"]), "gw": gw}
    capture = CaptureSink()
    app = create_app(settings, integrations, sink=capture)
    await app.state.runtime.start()
    resources = await open_resources(settings, integrations)
    for integration in integrations.values():
        await prepare_integration(resources, integration)
    await resources.creds("example").set_many({"WEBHOOK_TOKEN": EXAMPLE_TOKEN})
    client = await connect_settings(settings)  # the TracingInterceptor: workers inherit it
    workers = build_workers(client, resources, integrations, capture)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ", timeout=60)
    try:
        yield Traced(http, client, resources, capture)
    finally:
        await http.aclose()
        for w in workers:
            await w.shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_resources(resources)
        await app.state.runtime.stop()
        temporal.stop()


EXAMPLE_TOKEN = "hook-" + uuid.uuid4().hex
QUERY_CANARY = "tok-" + uuid.uuid4().hex


def named(found: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in found if s.name.startswith(prefix)]


def trace_ids(found: list[ReadableSpan]) -> set[object]:
    return {(s.attributes or {}).get(telemetry.TRACE_ID_ATTRIBUTE) for s in found}


async def test_a_durable_request_is_one_trace_carrying_the_request_id(
    traced: Traced, spans: InMemorySpanExporter
) -> None:
    request_id = "req-" + uuid.uuid4().hex[:12]
    resp = await traced.http.post(
        "/example/webhook/create-order",
        # A `token` in the query (as webhook senders may carry theirs) must not reach a span.
        params={"token": QUERY_CANARY, "source": "test"},
        json={"phone": "+380991234567", "product_id": "p-1", "quantity": 2},
        headers={"X-Request-Id": request_id, "Authorization": f"Bearer {EXAMPLE_TOKEN}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-trace-id"] == request_id
    workflow_id = resp.headers["x-workflow-id"]
    found = list(spans.get_finished_spans())

    server = named(found, "POST /example/webhook/create-order")
    assert len(server) == 1, [s.name for s in found]
    assert server[0].attributes is not None
    assert server[0].attributes[telemetry.TRACE_ID_ATTRIBUTE] == request_id
    assert server[0].attributes["http.route"] == "/example/webhook/create-order"
    started = named(found, "StartWorkflow:HandlerRun")
    run = named(found, "RunWorkflow:HandlerRun")
    activities = named(found, "RunActivity:")
    assert started and run and activities, [s.name for s in found]
    assert {(s.attributes or {}).get("temporalWorkflowID") for s in run} == {workflow_id}
    # One trace from the request to the activities, each span carrying the request id.
    trace_spans = [*server, *started, *run, *named(found, "StartActivity:"), *activities]
    assert {s.context.trace_id for s in trace_spans if s.context} == {server[0].context.trace_id}  # type: ignore[union-attr]
    assert trace_ids(trace_spans) == {request_id}
    # The same id the run's log lines carry.
    logged = {e.trace_id for e in traced.capture.events if e.handler == "create-order"}
    assert logged == {request_id}
    attributes = [str(value) for span in found for value in (span.attributes or {}).values()]
    assert any("source=test" in value for value in attributes), attributes  # the query is there…
    assert not any(QUERY_CANARY in value for value in attributes)  # …without the token


async def test_an_inline_request_gets_a_request_id_when_it_sends_none(
    traced: Traced, spans: InMemorySpanExporter
) -> None:
    resp = await traced.http.post("/gw/order", json={"customer": "Іван", "items": [{"name": "a", "qty": 1}]})
    assert resp.status_code == 200, resp.text
    given = resp.headers["x-trace-id"]
    server = named(list(spans.get_finished_spans()), "POST /gw/order")
    assert len(server) == 1 and trace_ids(server) == {given}
    # An id the caller sends that is not sane is replaced, as the handler routes always did.
    resp = await traced.http.post(
        "/gw/order",
        json={"customer": "x", "items": [{"name": "a", "qty": 1}]},
        headers={"X-Request-Id": "a b"},
    )
    assert resp.headers["x-trace-id"] != "a b" and len(resp.headers["x-trace-id"]) == 32


async def test_a_workflow_started_elsewhere_carries_its_workflow_id(
    traced: Traced, spans: InMemorySpanExporter
) -> None:
    workflow_id = f"example:handler:retry:{uuid.uuid4().hex[:8]}"
    provider = telemetry.tracer_provider(Settings())
    assert provider is not None
    with provider.get_tracer("test").start_as_current_span("operator"):
        result = await traced.client.execute_workflow(
            HandlerRun.run,
            HandlerRunInput(integration="example", handler="retry"),
            id=workflow_id,
            task_queue="happ-example",
            result_type=HandlerRunResult,
        )
    assert result.response["success"] is True
    found = [
        s for s in spans.get_finished_spans() if (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    ]
    names = {s.name for s in found}
    assert {"StartWorkflow:HandlerRun", "RunWorkflow:HandlerRun", "RunActivity:db.select"} <= names, names
    assert trace_ids(found) == {workflow_id}


# The OTLP/HTTP exporter, for real ---------------------------------------------------------------------


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback OTLP/HTTP endpoint that keeps every request's path and body."""
    received: list[tuple[str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def exported_spans(received: list[tuple[str, bytes]]) -> list[tuple[str, str, dict[str, str]]]:
    """(service, span name, string attributes) of every span the receiver got."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    found = []
    for path, body in received:
        assert path == "/v1/traces"
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    found.append((service, span.name, attributes))
    return found


def test_spans_are_exported_over_otlp_http(tmp_path: Path) -> None:
    script = """
from happ_integ import telemetry
from happ_integ.settings import Settings
from opentelemetry import baggage, context
provider = telemetry.tracer_provider(Settings(), "happ-test")
assert provider is not None
token = context.attach(baggage.set_baggage(telemetry.TRACE_ID_BAGGAGE, "req-otlp-1"))
with provider.get_tracer("t").start_as_current_span("POST /sofa/webhook/call-events"):
    pass
context.detach(token)
provider.shutdown()
print("sent")
"""
    with otlp_receiver() as (endpoint, received):
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0 and "sent" in result.stdout, result.stderr
    assert exported_spans(received) == [
        ("happ-test", "POST /sofa/webhook/call-events", {telemetry.TRACE_ID_ATTRIBUTE: "req-otlp-1"})
    ]


@pytest.mark.timeout(300)
async def test_a_worker_process_traces_a_whole_call(pg_url: str, tmp_path: Path) -> None:
    """`happ worker` with OTEL_EXPORTER_OTLP_ENDPOINT: the call's workflow, its activities and its
    child runs are exported, each span naming the workflow id the run is known by."""
    with otlp_receiver() as (endpoint, received):
        stack = await start_call_stack(pg_url, tmp_path / "logs", Play.answered(30, talk_seconds=0.2))
        try:
            stack.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            stack.env["OTEL_SERVICE_NAME"] = "happ-worker-under-test"
            worker = stack.start_worker()
            number = phone(950)
            stack.add_leads([number])
            [call_id] = await stack.originate([number])
            await stack.until_all([call_id], {"completed"}, seconds=120)
            worker.stop()  # a clean stop flushes the batch of spans
            assert worker.proc.returncode == 0, stack.worker_logs()
        finally:
            await stack.close()
    found = exported_spans(received)
    assert found and {service for service, _, _ in found} == {"happ-worker-under-test"}
    call = f"sofa:call:{call_id}"
    of_call = {name for _, name, attrs in found if attrs.get(telemetry.TRACE_ID_ATTRIBUTE) == call}
    for name in (
        "RunWorkflow:OutboundCall",
        "StartActivity:voice.originate",
        "RunActivity:voice.originate",
        "RunActivity:call.record",
        "StartChildWorkflow:HandlerRun",
        "HandleUpdate:call_event",
    ):
        assert name in of_call, sorted(of_call)
    lookup = f"sofa:handler:crm-lookup:{call_id}"
    of_lookup = {name for _, name, attrs in found if attrs.get(telemetry.TRACE_ID_ATTRIBUTE) == lookup}
    assert {"RunWorkflow:HandlerRun", "RunActivity:crm.search_records"} <= of_lookup, sorted(of_lookup)
