"""Dependencies as named `Annotated` aliases, so route signatures read like prose."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.openapi import ADMIN_SCHEME
from api.runtime import ApiRuntime
from happ_integ.errors import Unauthorized
from happ_integ.health import HealthReport


def runtime_of(request: Request) -> ApiRuntime:
    runtime: ApiRuntime = request.app.state.runtime
    return runtime


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, so each request
# would hop to the thread pool and back (a handoff and two wake-ups) for a lookup that itself takes
# no time; on every request that hop, not the lookup, is the cost.
async def get_runtime(request: Request) -> ApiRuntime:
    return runtime_of(request)


RuntimeDep = Annotated[ApiRuntime, Depends(get_runtime)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_bearer(request: Request, expected: str, what: str) -> None:
    """`Authorization: Bearer <expected>`, compared in constant time."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(f"missing {what}: send Authorization: Bearer <{what}>")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized(f"wrong {what}")


def require_admin(request: Request, runtime: RuntimeDep) -> None:
    """Admin routes need `Authorization: Bearer $HAPP_ADMIN_TOKEN`."""
    expected = runtime.settings.admin_token
    if expected is None:
        raise Unauthorized("admin routes are disabled: HAPP_ADMIN_TOKEN is not set")
    require_bearer(request, expected.get_secret_value(), "admin token")


# Declares the scheme in the OpenAPI document; the check itself is `require_admin`'s.
_admin_scheme = HTTPBearer(
    scheme_name=ADMIN_SCHEME, auto_error=False, description="Authorization: Bearer $HAPP_ADMIN_TOKEN"
)


async def _admin_route(
    request: Request,
    runtime: RuntimeDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_scheme)],
) -> None:
    require_admin(request, runtime)


AdminDep = Annotated[None, Depends(_admin_route)]


def is_admin(request: Request, runtime: ApiRuntime) -> bool:
    try:
        require_admin(request, runtime)
    except Unauthorized:
        return False
    return True


def health_response(report: HealthReport, request: Request, runtime: ApiRuntime) -> JSONResponse:
    """200 when every check passed, else 503; details only for a caller with the admin token."""
    shown = report if is_admin(request, runtime) else report.public()
    return JSONResponse(shown.model_dump(mode="json", exclude_none=True), 200 if report.ok else 503)
