"""Telemetry of every happ process: the Temporal SDK's Prometheus metrics, and OpenTelemetry traces.

    runtime = temporal_runtime(settings, buckets)      # a worker, before any client: HAPP_METRICS_PORT
    client = await connect_settings(settings, runtime) # + TracingInterceptor when tracing is on
    instrument_app(app, settings)                      # the gateway's spans (FastAPI instrumentation)

Metrics: a worker with `HAPP_METRICS_PORT` set serves the SDK's metrics (`temporal_*`) and the
call metrics its workflows emit (`happ_*`, see `workflows.call_metrics`) at
`http://HAPP_METRICS_HOST:HAPP_METRICS_PORT/metrics`. Unset, there is no endpoint.

Tracing is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans go to
`{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces` over OTLP/HTTP. Unset, nothing of OpenTelemetry is
imported or installed. Every span carries `happ.trace_id`, the id the logs carry for the same
work: a request's id (`X-Request-Id`, answered as `X-Trace-Id`) at the gateway and in what it runs
inline; in a durable run, the run's own `trace_id` (the request that started it) or else its
workflow id. It travels as W3C baggage from the gateway into workflows and from workflows into
their activities.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from temporalio.client import Interceptor

    from happ_integ.settings import Settings

TRACE_ID_ATTRIBUTE = "happ.trace_id"
TRACE_ID_BAGGAGE = "happ.trace_id"
# What the gateway accepts as a caller's request id (the same rule as api.routes.handlers).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Requests that would only be noise in traces: health checks and scrapes.
_UNTRACED_URLS = "/health$,/metrics$"

_runtimes: dict[str, Runtime] = {}
_provider: TracerProvider | None = None
_test_provider: TracerProvider | None = None


# Metrics ----------------------------------------------------------------------------------------


def temporal_runtime(
    settings: Settings, histogram_buckets: Mapping[str, Sequence[float]] | None = None
) -> Runtime | None:
    """The SDK runtime serving Prometheus metrics on `HAPP_METRICS_HOST:HAPP_METRICS_PORT`, or None
    when `HAPP_METRICS_PORT` is unset. Create it before any client, and connect the worker's client
    with it (`connect_settings(settings, runtime)`): a client's workers report through its runtime.
    One per address in a process (a port binds once)."""
    if settings.metrics_port is None:
        return None
    address = f"{settings.metrics_host}:{settings.metrics_port}"
    if address not in _runtimes:
        _runtimes[address] = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    histogram_bucket_overrides=dict(histogram_buckets or {}),
                )
            )
        )
    return _runtimes[address]


# Tracing ----------------------------------------------------------------------------------------


def traces_endpoint(base: str) -> str:
    """OTLP/HTTP: the traces path is appended to `OTEL_EXPORTER_OTLP_ENDPOINT`, as the spec says."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def tracer_provider(settings: Settings, service_name: str = "happ") -> TracerProvider | None:
    """The process's tracer provider (made and installed globally on first use), or None when
    tracing is off. `OTEL_SERVICE_NAME` names the service, else `service_name` of the first caller
    (`happ-api`, `happ-worker`, `happ` for the CLI)."""
    global _provider
    if _test_provider is not None:
        return _test_provider
    if not settings.otel_endpoint:
        return None
    if _provider is None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.otel_service_name or service_name})
        )
        provider.add_span_processor(trace_id_processor())
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint(settings.otel_endpoint)))
        )
        trace.set_tracer_provider(provider)
        _provider = provider
    return _provider


def use_test_provider(provider: TracerProvider | None) -> None:
    """Tests: trace into `provider` (e.g. with an in-memory exporter) whatever the settings say;
    None turns that off again. The provider should have `trace_id_processor()` first."""
    global _test_provider
    _test_provider = provider


def temporal_interceptors(settings: Settings, service_name: str = "happ") -> list[Interceptor]:
    """`[TracingInterceptor]` when tracing is on, else `[]`. Given to a client, it also applies to
    every worker made from that client (workflows, activities, the client calls they make)."""
    provider = tracer_provider(settings, service_name)
    if provider is None:
        return []
    return [_interceptor(provider)]


def instrument_app(app: Any, settings: Settings) -> bool:
    """FastAPI instrumentation of the gateway and the request-id middleware; False when tracing is off."""
    provider = tracer_provider(settings, "happ-api")
    if provider is None:
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app.add_middleware(RequestTraceMiddleware)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=_UNTRACED_URLS,
        exclude_spans=["receive", "send"],
        server_request_hook=_without_query_secrets,
    )
    return True


# The query parameter a webhook sender may carry its token in (`api.auth.TOKEN_QUERY`).
_SECRET_QUERY = re.compile(r"(?i)(^|[?&])(token=)[^&#]*")
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def _without_query_secrets(span: Any, scope: Any) -> None:
    """The server span sees the request before any middleware: its URL attributes, set from the
    raw query string, get a sender's `token=` value replaced by `***`."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "token=" in value.lower():
            span.set_attribute(name, _SECRET_QUERY.sub(r"\1\2***", value))


def trace_id_processor() -> Any:
    """A span processor that puts `happ.trace_id` on every span that lacks it: from the baggage of
    its parent context, else the workflow id the Temporal interceptor put on it."""
    return _classes().processor()


@functools.cache
def _interceptor(provider: TracerProvider) -> Interceptor:
    # Workflow spans even for runs no traced client started (schedules, a CLI): after a worker
    # restart a run's later spans may start a new trace, but `happ.trace_id` still joins them.
    interceptor: Interceptor = _classes().interceptor(
        provider.get_tracer("happ_integ"), always_create_workflow_spans=True
    )
    return interceptor


@functools.cache
def _classes() -> Any:
    """The OpenTelemetry subclasses, defined on first use so nothing of OpenTelemetry is imported
    while tracing is off."""
    from types import SimpleNamespace

    import opentelemetry.baggage
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span, SpanProcessor
    from temporalio import workflow
    from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
    from temporalio.worker import ExecuteWorkflowInput, WorkflowInterceptorClassInput

    class TraceIdProcessor(SpanProcessor):
        def on_start(self, span: Span, parent_context: Context | None = None) -> None:
            attributes = span.attributes or {}
            if TRACE_ID_ATTRIBUTE in attributes:
                return
            value = opentelemetry.baggage.get_baggage(TRACE_ID_BAGGAGE, parent_context)
            value = value or attributes.get("temporalWorkflowID")
            if value:
                span.set_attribute(TRACE_ID_ATTRIBUTE, str(value))

    class HappWorkflowInterceptor(TracingWorkflowInboundInterceptor):
        """Workflow spans carry the run's trace id: `HandlerRunInput.trace_id`, else the workflow id."""

        _happ_trace_id: str | None = None

        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            given = getattr(input.args[0], "trace_id", None) if input.args else None
            self._happ_trace_id = given if isinstance(given, str) and given else None
            return await super().execute_workflow(input)

        def _completed_span(self, span_name: str, **kwargs: Any) -> None:
            trace_id = self._happ_trace_id or workflow.info().workflow_id
            kwargs["additional_attributes"] = {
                **(kwargs.get("additional_attributes") or {}),
                TRACE_ID_ATTRIBUTE: trace_id,
            }
            super()._completed_span(span_name, **kwargs)

    class HappTracingInterceptor(TracingInterceptor):
        def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput
        ) -> type[TracingWorkflowInboundInterceptor]:
            super().workflow_interceptor_class(input)
            return HappWorkflowInterceptor

        def _completed_workflow_span(self, params: Any) -> Any:
            # The context handed on to the workflow's activities and children carries the
            # workflow's trace id as baggage, so their spans name it too.
            carrier = super()._completed_workflow_span(params)
            trace_id = (params.attributes or {}).get(TRACE_ID_ATTRIBUTE)
            if carrier is None or not trace_id:
                return carrier
            context = opentelemetry.baggage.set_baggage(
                TRACE_ID_BAGGAGE, trace_id, self.text_map_propagator.extract(carrier)
            )
            updated: dict[str, Any] = {}
            self.text_map_propagator.inject(updated, context)
            return updated

    return SimpleNamespace(processor=TraceIdProcessor, interceptor=HappTracingInterceptor)


# The gateway's request id -----------------------------------------------------------------------


def route_template(scope: Scope) -> str | None:
    """The matched route as written (`/sofa/webhook/call-events`, `/{integration}` mounts
    included), never the raw path; None when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or hasattr(route, "routes"):  # no route, or only a Mount
        return None
    root = str(scope.get("root_path", ""))
    app_root = str(scope.get("app_root_path", ""))
    if app_root and root.startswith(app_root):
        root = root[len(app_root) :]
    return f"{root}{path}" or "/"


class RequestTraceMiddleware:
    """Gives every request the id its logs carry, before any route runs: the caller's sane
    `X-Request-Id`, else a new one, written back into the request so the handler routes use it.
    The server span gets it as `happ.trace_id` (and its name the route template), the work the
    request starts gets it as baggage, and the answer carries it as `X-Trace-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import baggage, context, trace

        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"x-request-id"]
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        trace_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope["headers"] = [*headers, (b"x-request-id", trace_id.encode())]
        scope.setdefault("state", {})["trace_id"] = trace_id
        span = trace.get_current_span()
        span.set_attribute(TRACE_ID_ATTRIBUTE, trace_id)

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Routed by now, and the span ends with the last body chunk: name it here.
                template = route_template(scope)
                if template is not None and span.is_recording():
                    span.update_name(f"{scope.get('method', 'HTTP')} {template}")
                    span.set_attribute("http.route", template)
                names = {k.lower() for k, _ in message.get("headers", [])}
                if b"x-trace-id" not in names:
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"x-trace-id", trace_id.encode())],
                    }
            await send(message)

        token = context.attach(baggage.set_baggage(TRACE_ID_BAGGAGE, trace_id))
        try:
            await self.app(scope, receive, answer)
        finally:
            context.detach(token)
