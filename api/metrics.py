"""The gateway's Prometheus metrics, served at `GET /metrics` from a registry of its own.

    metrics = GatewayMetrics(integrations)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

Every label value comes from a bounded set: the integration (one of those served, else `-`), the
route as written (`/webhook/call-events`, `/config/{key}`: never the raw path, so no phone number
or call id), the route's name, the method, the status code, the auth scheme, the dependency name.

- `happ_http_requests_total{integration, handler, route, method, status}`
- `happ_http_request_duration_seconds{integration, handler, route, method}` (histogram)
- `happ_webhook_auth_failures_total{integration, handler, scheme}`: 401s of webhook routes,
  `scheme` `bearer` (WEBHOOK_TOKEN), `elevenlabs` (the HMAC signature) or `sender` (the sender
  token of call-events and agent-init; agent-init's date-and-time-only answers count too)
- `happ_dedup_hits_total{integration, handler}`: answers replayed from the dedup store (`X-Happ-Dedup: hit`)
- `happ_dependency_unavailable_total{integration, handler, dependency}`: 503s, by what was down
  (`PostgreSQL`, `Temporal`, …; `none` for a 503 that names no dependency)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openapi import ELEVENLABS_SCHEME, SENDER_QUERY_SCHEME, SENDER_SCHEME, WEBHOOK_TOKEN_SCHEME
from happ_integ.telemetry import route_template

NONE = "-"
UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SCHEMES = {
    WEBHOOK_TOKEN_SCHEME: "bearer",
    ELEVENLABS_SCHEME: "elevenlabs",
    SENDER_SCHEME: "sender",
    SENDER_QUERY_SCHEME: "sender",
}
_DEPENDENCY = re.compile(r"[A-Za-z][A-Za-z0-9 ._-]{0,31}")
# /health names its checks, not the dependency the error answers name.
_HEALTH_CHECKS = {"postgres": "PostgreSQL", "temporal": "Temporal"}
_MAX_BODY = 64 * 1024
_UNRECORDED = frozenset({"/metrics"})


class GatewayMetrics:
    def __init__(self, integrations: Iterable[str]) -> None:
        self.integrations = frozenset(integrations)
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("integration", "handler", "route", "method")
        self.requests = Counter(
            "happ_http_requests",
            "Requests answered by the gateway, by route and status code",
            (*labels, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "happ_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "happ_webhook_auth_failures",
            "Webhook requests refused for a missing or wrong bearer token or ElevenLabs signature",
            ("integration", "handler", "scheme"),
            registry=self.registry,
        )
        self.dedup_hits = Counter(
            "happ_dedup_hits",
            "Deliveries answered from the dedup store (X-Happ-Dedup: hit)",
            ("integration", "handler"),
            registry=self.registry,
        )
        self.unavailable = Counter(
            "happ_dependency_unavailable",
            "503 answers, by the dependency that was down",
            ("integration", "handler", "dependency"),
            registry=self.registry,
        )

    async def endpoint(self, request: Request) -> Response:
        """The Prometheus text format of this replica's metrics."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def labels_of(self, scope: Scope) -> tuple[str, str, str]:
        """(integration, handler, route) of a request that has been routed (or failed to be)."""
        path = str(scope.get("path", ""))
        first = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        integration = first if first in self.integrations else NONE
        template = route_template(scope)
        if template is None:
            return integration, NONE, UNMATCHED
        if integration != NONE and template.startswith(f"/{integration}/"):
            template = template[len(integration) + 1 :]
        name = str(getattr(scope.get("route"), "name", "") or NONE)
        handler = name.split(":", 1)[1] if name.startswith(f"{integration}:") else name
        return integration, handler, template

    def observe(
        self,
        scope: Scope,
        status: int,
        seconds: float,
        headers: dict[bytes, bytes],
        body: bytes | None,
    ) -> None:
        integration, handler, route = self.labels_of(scope)
        if route in _UNRECORDED:
            return
        method = str(scope.get("method", "")).upper()
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(integration, handler, route, method, str(status)).inc()
        self.latency.labels(integration, handler, route, method).observe(seconds)
        # agent-init answers a caller without the sender token 200 (date and time only) and says so
        # in the request's state: counted like a 401, so a sender left unconfigured shows.
        refused = (scope.get("state") or {}).get("auth_refused")
        if status == 401 or refused:
            scheme = _auth_scheme(scope)
            if scheme is not None:
                self.auth_failures.labels(integration, handler, scheme).inc()
        if headers.get(b"x-happ-dedup", b"").lower() == b"hit":
            self.dedup_hits.labels(integration, handler).inc()
        if status == 503:
            for dependency in _dependencies(body):
                self.unavailable.labels(integration, handler, dependency).inc()


def _auth_scheme(scope: Scope) -> str | None:
    """`bearer` or `elevenlabs` for a route that declares webhook authentication, else None
    (an admin route's 401 is not a webhook's)."""
    extra = getattr(scope.get("route"), "openapi_extra", None) or {}
    for requirement in extra.get("security") or []:
        for name in requirement:
            if name in _SCHEMES:
                return _SCHEMES[name]
    return None


def _dependencies(body: bytes | None) -> list[str]:
    """What a 503 says was down: the error answer's `dependency`, or the failed checks of /health."""
    try:
        answer = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return ["none"]
    if not isinstance(answer, dict):
        return ["none"]
    named = answer.get("dependency")
    if isinstance(named, str) and named:
        return [named if _DEPENDENCY.fullmatch(named) else "other"]
    checks = answer.get("checks")
    if isinstance(checks, dict):
        failed = [
            _HEALTH_CHECKS.get(name, name if _DEPENDENCY.fullmatch(name) else "other")
            for name, check in checks.items()
            if isinstance(check, dict) and check.get("ok") is False
        ]
        if failed:
            return sorted(set(failed))
    return ["none"]


class MetricsMiddleware:
    """Plain ASGI: times each HTTP request and records it once its answer is sent (a 503's body
    is read for the dependency it names; no other body is kept)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        headers: dict[bytes, bytes] = {}
        body: bytearray | None = None

        async def recording_send(message: Message) -> None:
            nonlocal status, headers, body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                body = bytearray() if status == 503 else None
            elif message["type"] == "http.response.body" and body is not None:
                if len(body) < _MAX_BODY:
                    body.extend(message.get("body", b"")[: _MAX_BODY - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            status = status or 500
            raise
        finally:
            if status:
                self.metrics.observe(
                    scope,
                    status,
                    time.perf_counter() - started,
                    headers,
                    bytes(body) if body is not None else None,
                )
