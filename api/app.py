"""The gateway: one FastAPI app, one mounted sub-application per integration.

    app = create_app()                 # settings from the environment, integrations discovered
    uvicorn.run(app, port=3001)

Each integration at `/{name}` has its own routes, OpenAPI document (`/{name}/openapi.json`) and
docs page (`/{name}/docs`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from api.auth import SenderTokenQuery
from api.console import console_router
from api.errors import install_error_handlers
from api.limits import CAMPAIGN_UPLOADS, SUPPRESSION_IMPORTS, BodySizeLimit
from api.metrics import GatewayMetrics, MetricsMiddleware
from api.openapi import install_openapi
from api.routes.admin import admin_router
from api.routes.builtins import HEALTH_RESPONSES, builtins_router, health_answer
from api.routes.call_webhooks import call_webhooks_router
from api.routes.calls_admin import calls_admin_router
from api.routes.campaign_preflight import campaign_preflight_router
from api.routes.campaigns import campaigns_router
from api.routes.codec import router as codec_router
from api.routes.handlers import handler_router
from api.routes.suppressions import router as suppressions_router
from api.runtime import ApiRuntime
from happ_integ.integration import Integration, discover_integrations
from happ_integ.logs import LogSink
from happ_integ.settings import Settings
from happ_integ.telemetry import instrument_app

# How long an idle keep-alive connection stays open. Longer than a client's or a load balancer's
# own idle timeout (httpx 5 s, nginx 60 s, AWS ALB 60 s): otherwise the server may close a
# connection just as the sender reuses it, and that delivery fails with a reset.
KEEP_ALIVE_SECONDS = 75

log = logging.getLogger("happ.api")


def integration_app(integration: Integration, runtime: ApiRuntime) -> FastAPI:
    app = FastAPI(
        title=f"happ-integ: {integration.name}",
        version="0.1.0",
        description=f"Handlers and built-ins of the `{integration.name}` integration.",
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(builtins_router(integration))
    app.include_router(admin_router(integration))
    app.include_router(handler_router(integration))
    if integration.call_flow is not None:
        app.include_router(call_webhooks_router(integration))
        app.include_router(calls_admin_router(integration))
        app.include_router(campaign_preflight_router(integration))
        app.include_router(campaigns_router(integration))
    install_openapi(app)
    return app


def create_app(
    settings: Settings | None = None,
    integrations: Mapping[str, Integration] | None = None,
    sink: LogSink | None = None,
) -> FastAPI:
    settings = settings or Settings()
    integrations = dict(
        integrations if integrations is not None else discover_integrations(settings.integrations)
    )
    runtime = ApiRuntime(settings, integrations, sink)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            yield

    app = FastAPI(
        title="happ-integ",
        version="0.1.0",
        lifespan=lifespan,
        description="Voice-AI outbound-call integrations on Temporal.",
    )
    app.state.runtime = runtime
    install_error_handlers(app)

    @app.get("/health", tags=["Built-ins"], responses=HEALTH_RESPONSES)
    async def health(request: Request) -> JSONResponse:
        """Without credentials: `{"status": "ok"}` from the process (liveness; nothing else is
        touched). With the admin token: PostgreSQL and Temporal, checked for real."""
        return await health_answer(request, runtime, None)

    @app.get("/", tags=["Built-ins"])
    async def index() -> dict[str, object]:
        """The integrations served here, with links to their docs."""
        return {
            "integrations": {
                name: {
                    "docs": f"/{name}/docs",
                    "openapi": f"/{name}/openapi.json",
                    "handlers": sorted(i.handlers),
                }
                for name, i in integrations.items()
            }
        }

    # Prometheus metrics of this replica (a registry of its own), scraped at /metrics.
    metrics = GatewayMetrics(integrations)
    app.state.metrics = metrics
    app.add_api_route("/metrics", metrics.endpoint, methods=["GET"], include_in_schema=False)

    app.include_router(codec_router)
    app.include_router(console_router)
    app.include_router(suppressions_router)
    for name, integration in integrations.items():
        app.mount(f"/{name}", integration_app(integration, runtime))
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger=(
            (CAMPAIGN_UPLOADS, max(settings.max_campaign_body_bytes, settings.max_body_bytes)),
            (SUPPRESSION_IMPORTS, max(settings.max_campaign_body_bytes, settings.max_body_bytes)),
        ),
    )
    # The Web UI calls the codec from its own origin, with the sign-in cookie.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_origins,
        allow_credentials=True,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
    )
    # Outermost: every answer is counted, a 413 of the body limit included.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Before everything else: a sender's `?token=` leaves the query string (logs, traces, errors).
    app.add_middleware(SenderTokenQuery)
    for name, integration in integrations.items():
        if integration.call_flow is not None and integration.call_flow.sender_auth == "none":
            log.warning(
                "integration %s accepts call-events and agent-init from anyone (call_flow sender_auth='none'): "
                "anyone who can reach the gateway can end its calls and read its CRM lookups",
                name,
            )
    # Spans (FastAPI instrumentation, the request id as `happ.trace_id`) only when
    # OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing is installed.
    instrument_app(app, settings)
    return app
