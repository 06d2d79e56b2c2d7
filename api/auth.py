"""Webhook authentication: a bearer shared secret, the ElevenLabs HMAC signature, or a sender token.

    ElevenLabs-Signature: t=1705845552,v0=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>
    Authorization: Bearer <token>              (call-originate: WEBHOOK_TOKEN)
    POST /sofa/webhook/call-events?token=<t>   (senders that cannot set a header)

The call's senders (the voice assistant's call-events, the ElevenLabs agent's agent-init) hold
the integration's `SENDER_TOKEN` when it is set, else its `WEBHOOK_TOKEN`. `SenderTokenQuery`
takes a `token` query parameter out of the request before anything else sees it, so the token
never reaches an access log, a trace or an error text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import bearer_token, require_bearer
from api.runtime import ApiRuntime
from happ_integ.errors import SecretMissing, Unauthorized
from happ_integ.handler import Auth, BearerAuth, ElevenLabsAuth
from happ_integ.integration import Integration

SENDER_TOKEN = "SENDER_TOKEN"
WEBHOOK_TOKEN = "WEBHOOK_TOKEN"
TOKEN_QUERY = "token"
# Where `SenderTokenQuery` keeps the query's token for the route (ASGI scope keys are free-form).
_SCOPE_TOKEN = "happ.sender_token"

_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX = re.compile(r"[0-9a-f]{64}")


def verify_elevenlabs_signature(
    header: str | None, body: bytes, secret: str, tolerance_seconds: int = 1800, now: float | None = None
) -> None:
    timestamp, signature = _signature_header(header, tolerance_seconds, now)
    _check_signature(timestamp, signature, body, secret)


def _signature_header(
    header: str | None, tolerance_seconds: int, now: float | None = None
) -> tuple[str, str]:
    """`(t, v0)` of an `ElevenLabs-Signature` header inside the tolerance window, else `Unauthorized`:
    checked before the body is read, so a request without a usable header costs nothing more."""
    if not header:
        raise Unauthorized("missing ElevenLabs-Signature header")
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = parts.get("t", "").strip(), parts.get("v0", "").strip().lower()
    if not _DIGITS.fullmatch(timestamp) or not _HEX.fullmatch(signature):
        raise Unauthorized("malformed ElevenLabs-Signature header: expected t=<unix>,v0=<hex>")
    if abs((now or time.time()) - int(timestamp)) > tolerance_seconds:
        raise Unauthorized("ElevenLabs-Signature timestamp is outside the tolerance window")
    return timestamp, signature


def _check_signature(timestamp: str, signature: str, body: bytes, secret: str) -> None:
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("ElevenLabs-Signature does not match the body")


async def _secret(runtime: ApiRuntime, integration: str, name: str) -> str:
    value = await runtime.resources.creds(integration).reveal(name)
    if not value:
        raise SecretMissing(
            f"webhook authentication is not configured: secret {name} of {integration!r} is not set"
        )
    return value


async def authenticate(request: Request, runtime: ApiRuntime, integration: str, auth: Auth) -> None:
    if auth is None:
        return
    # What the caller presented is checked first: a caller with nothing usable is refused without
    # a read of the secret or the body.
    if isinstance(auth, BearerAuth):
        if bearer_token(request) is None:
            raise Unauthorized("missing token: send Authorization: Bearer <token>")
        require_bearer(request, await _secret(runtime, integration, auth.secret), "token")
        return
    if isinstance(auth, ElevenLabsAuth):
        timestamp, signature = _signature_header(
            request.headers.get("elevenlabs-signature"), auth.tolerance_seconds
        )
        secret = await _secret(runtime, integration, auth.secret)
        _check_signature(timestamp, signature, await request.body(), secret)


def webhook_auth(integration: str, auth: Auth) -> Callable[[Request], Awaitable[None]]:
    """A route dependency checking `auth` before anything else, the body's validation included:
    a caller without the right credentials learns nothing about what the route accepts.

        router.add_api_route(path, endpoint, dependencies=[Depends(webhook_auth("sofa", BearerAuth()))])
    """

    async def check(request: Request) -> None:
        await authenticate(request, request.app.state.runtime, integration, auth)

    return check


class SenderTokenQuery:
    """ASGI middleware: a `token` query parameter is moved out of the query string (in place, so
    uvicorn's access log and OpenTelemetry's span see the query without it) into the scope, where
    `sender_token` finds it. Outermost, before routing and tracing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"token=" in scope.get("query_string", b""):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            tokens = [value for key, value in pairs if key == TOKEN_QUERY]
            if tokens:
                scope[_SCOPE_TOKEN] = tokens[-1]
                rest = [(key, value) for key, value in pairs if key != TOKEN_QUERY]
                scope["query_string"] = urlencode(rest).encode("latin-1")
        await self.app(scope, receive, send)


def sender_token(request: Request) -> str | None:
    """The token a sender presented: `Authorization: Bearer …`, else the `token` query parameter."""
    token = bearer_token(request)
    if token is not None:
        return token
    value: Any = request.scope.get(_SCOPE_TOKEN)
    return (value.strip() or None) if isinstance(value, str) else None


async def check_sender(request: Request, runtime: ApiRuntime, integration: Integration) -> None:
    """Raise `Unauthorized` unless the request carries the integration's sender token
    (`SENDER_TOKEN` when set, else `WEBHOOK_TOKEN`), compared in constant time; `SecretMissing`
    when neither is set. An integration whose call flow says `sender_auth="none"` accepts anyone.
    """
    flow = integration.call_flow
    if flow is not None and flow.sender_auth == "none":
        return
    presented = sender_token(request)
    if presented is None:
        raise Unauthorized(
            "missing sender token: send Authorization: Bearer <token>, or ?token=<token> in the webhook URL"
        )
    secrets = await runtime.resources.creds(integration.name).reveal_some(SENDER_TOKEN, WEBHOOK_TOKEN)
    expected = secrets.get(SENDER_TOKEN) or secrets.get(WEBHOOK_TOKEN)
    if not expected:
        raise SecretMissing(
            f"webhook authentication is not configured: neither {SENDER_TOKEN} nor {WEBHOOK_TOKEN} "
            f"of {integration.name!r} is set"
        )
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("wrong sender token")


def sender_auth(integration: Integration) -> Callable[[Request], Awaitable[None]]:
    """A route dependency: `check_sender` before the body is read or anything is looked up."""

    async def check(request: Request) -> None:
        await check_sender(request, request.app.state.runtime, integration)

    return check
