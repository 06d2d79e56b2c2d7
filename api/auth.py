"""Webhook authentication: a bearer shared secret, or the ElevenLabs HMAC signature.

ElevenLabs-Signature: t=1705845552,v0=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import Request

from api.deps import require_bearer
from api.runtime import ApiRuntime
from happ_integ.errors import SecretMissing, Unauthorized
from happ_integ.handler import Auth, BearerAuth, ElevenLabsAuth

_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX = re.compile(r"[0-9a-f]{64}")


def verify_elevenlabs_signature(
    header: str | None, body: bytes, secret: str, tolerance_seconds: int = 1800, now: float | None = None
) -> None:
    if not header:
        raise Unauthorized("missing ElevenLabs-Signature header")
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, signature = parts.get("t", "").strip(), parts.get("v0", "").strip().lower()
    if not _DIGITS.fullmatch(timestamp) or not _HEX.fullmatch(signature):
        raise Unauthorized("malformed ElevenLabs-Signature header: expected t=<unix>,v0=<hex>")
    if abs((now or time.time()) - int(timestamp)) > tolerance_seconds:
        raise Unauthorized("ElevenLabs-Signature timestamp is outside the tolerance window")
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
    if isinstance(auth, BearerAuth):
        require_bearer(request, await _secret(runtime, integration, auth.secret), "token")
        return
    if isinstance(auth, ElevenLabsAuth):
        verify_elevenlabs_signature(
            request.headers.get("elevenlabs-signature"),
            await request.body(),
            await _secret(runtime, integration, auth.secret),
            auth.tolerance_seconds,
        )


def webhook_auth(integration: str, auth: Auth) -> Callable[[Request], Awaitable[None]]:
    """A route dependency checking `auth` before anything else, the body's validation included:
    a caller without the right credentials learns nothing about what the route accepts.

        router.add_api_route(path, endpoint, dependencies=[Depends(webhook_auth("sofa", BearerAuth()))])
    """

    async def check(request: Request) -> None:
        await authenticate(request, request.app.state.runtime, integration, auth)

    return check
