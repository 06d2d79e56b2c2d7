"""The per-integration OpenAPI document: FastAPI's, plus the security schemes our routes use.

    install_openapi(app)

- `AdminToken`: `Authorization: Bearer $HAPP_ADMIN_TOKEN` (admin routes, declared by `AdminDep`);
- `WebhookToken`: `Authorization: Bearer <the integration's WEBHOOK_TOKEN secret>`;
- `SenderToken` / `SenderTokenQuery`: the call's senders (call-events, agent-init): the
  integration's SENDER_TOKEN (else WEBHOOK_TOKEN) as a bearer header or a `token` query parameter;
- `ElevenLabsSignature`: the `ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256>` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ADMIN_SCHEME = "AdminToken"
WEBHOOK_TOKEN_SCHEME = "WebhookToken"
ELEVENLABS_SCHEME = "ElevenLabsSignature"
SENDER_SCHEME = "SenderToken"
SENDER_QUERY_SCHEME = "SenderTokenQuery"
# Either one: a route's `openapi_extra={"security": SENDER_SECURITY}`.
SENDER_SECURITY: list[dict[str, list[str]]] = [{SENDER_SCHEME: []}, {SENDER_QUERY_SCHEME: []}]

_SCHEMES: dict[str, dict[str, Any]] = {
    WEBHOOK_TOKEN_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "The integration's WEBHOOK_TOKEN secret (PUT /{integration}/secrets sets it)",
    },
    SENDER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "The integration's SENDER_TOKEN secret, or its WEBHOOK_TOKEN when SENDER_TOKEN is unset",
    },
    SENDER_QUERY_SCHEME: {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The same token as SenderToken, for senders that cannot set a header "
        "(put it in the webhook URL you configure: …/webhook/call-events?token=…)",
    },
    ELEVENLABS_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "ElevenLabs-Signature",
        "description": 't=<unix seconds>,v0=<hex HMAC-SHA256 of "{t}.{raw body}" under '
        "ELEVENLABS_WEBHOOK_SECRET>; older than 30 minutes is refused",
    },
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            for name, spec in _SCHEMES.items():
                schemes.setdefault(name, spec)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
