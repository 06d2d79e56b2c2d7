"""One error shape for every failure: `{"success": false, "error": ..., ...}`, never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path
from temporalio.service import RPCError, RPCStatusCode

from happ_integ.errors import DependencyUnavailable, HappError

log = logging.getLogger("happ.api")

_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "error": message, **{k: v for k, v in extra.items() if v is not None}}


def as_happ_error(exc: BaseException) -> HappError | None:
    """The HappError an exception means to a caller, or None for a bug of ours."""
    if isinstance(exc, HappError):
        return exc
    if isinstance(exc, TimeoutError):
        return None
    if isinstance(
        exc,
        ConnectionError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    ):
        return DependencyUnavailable("PostgreSQL", "PostgreSQL is unavailable")
    if isinstance(exc, RPCError) and exc.status in _UNAVAILABLE:
        return DependencyUnavailable("Temporal", "Temporal is unavailable")
    return None


def error_response(
    exc: BaseException, trace_id: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON answer for any exception: its status, a message, and which dependency if one is down."""
    headers = dict(headers or {})
    error = as_happ_error(exc)
    if error is None:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body(f"internal error ({type(exc).__name__})", trace_id=trace_id), 500, headers
        )
    workflow_id = error.details.get("workflow_id")
    if workflow_id:
        headers["X-Workflow-Id"] = str(workflow_id)
    dependency = error.dependency if isinstance(error, DependencyUnavailable) else None
    if dependency:
        headers["Retry-After"] = "5"
    elif error.status_code == 503:
        # Not down but not ready, e.g. a route's WEBHOOK_TOKEN not set yet: worth a later retry.
        headers["Retry-After"] = "60"
    body = error_body(error.message, dependency=dependency, workflow_id=workflow_id, trace_id=trace_id)
    return JSONResponse(body, error.status_code, headers)


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    detail = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        message = err.get("msg", "")
        if err.get("type") == "json_invalid":
            # Where the parser stopped is a number in `loc`; what went wrong is in ctx.
            loc = loc[:1]
            message = f"{message}: {(err.get('ctx') or {}).get('error', '')}".rstrip(": ")
        detail.append(
            {
                "field": ".".join(loc[1:] if loc and loc[0] in {"body", "query", "path", "header"} else loc)
                or "body",
                "loc": loc,
                "message": message,
                "type": err.get("type", ""),
            }
        )
    return detail


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this app serves at the request's path."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    pending = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            # Routers included without a prefix (ours) keep their routes' paths as they are.
            pending.extend(included.routes)
            continue
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return sorted(methods - {"HEAD"}) or ["GET"]


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _validation_detail(exc)
        first = detail[0] if detail else {"field": "body", "message": "invalid"}
        return JSONResponse(error_body(f"invalid {first['field']}: {first['message']}", detail=detail), 422)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            # Starlette names only the first route on the path; GET and PUT /config/{key} are two.
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
        return JSONResponse(error_body(message), exc.status_code, headers=headers or None)

    async def on_any(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, getattr(request.state, "trace_id", None))

    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    # Named classes go through Starlette's exception middleware (a response, no re-raise); the bare
    # Exception entry is the last resort for bugs, still answered as JSON.
    for cls in (HappError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RPCError, Exception):
        app.add_exception_handler(cls, on_any)
