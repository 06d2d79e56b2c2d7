"""The integration's own routes: one per handler endpoint, plus `POST /webhook/{name}` for event-only handlers.

Each route: authenticate (before the body is read, see `api.body`) → validate → rate limit →
dedup → run (inline or durable) → answer. The payload model is the route's body (or query, for
GET), so FastAPI validates it (422 with the field path) and the OpenAPI document shows it.

A repeated request is told by its `Idempotency-Key` header, else by the handler's `dedup` field,
each scoped to the caller's credential (`api.idempotency`): the first answer is replayed to the
same caller only. The same `Idempotency-Key` with another body is a 409.
"""

import contextlib
import inspect
import logging
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import webhook_auth
from api.body import GuardedRoute
from api.deps import runtime_of
from api.dispatch import run_for_request
from api.errors import error_body, error_response
from api.idempotency import (
    IDEMPOTENCY_TTL_SECONDS,
    body_digest,
    caller_scope,
    scoped_dedup_key,
    scoped_idempotency_key,
)
from api.openapi import ELEVENLABS_SCHEME, WEBHOOK_TOKEN_SCHEME
from api.responses import Accepted, error_responses
from api.runtime import ApiRuntime
from happ_integ.handler import BearerAuth, ElevenLabsAuth, HandlerDefinition
from happ_integ.integration import Integration, route_of
from happ_integ.temporal import handler_workflow_id

MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 30.0
KEY_REUSED = "this Idempotency-Key was used with another body: send a new key for a new request"

log = logging.getLogger("happ.api")


def handler_router(integration: Integration) -> APIRouter:
    router = APIRouter(route_class=GuardedRoute)
    for definition in integration.routed_handlers():
        method, _, path = route_of(definition).partition(" ")
        if definition.auth is None:
            # Public by the handler's own `auth="none"`: said at start, where an operator sees it.
            log.warning(
                "integration %s serves %s %s without authentication (handler %r says auth='none'): "
                "anyone who can reach the gateway can call it",
                integration.name,
                method,
                path,
                definition.name,
            )
        # An event-only handler (`POST /webhook/{name}`) always runs durably.
        _add_route(
            router, integration, definition, method, path, durable=definition.durable or definition.event_only
        )
    return router


def _add_route(
    router: APIRouter,
    integration: Integration,
    definition: HandlerDefinition,
    method: str,
    path: str,
    durable: bool,
) -> None:
    name = integration.name
    model = definition.payload_model

    async def endpoint(
        request: Request, payload: BaseModel, idempotency_key: str | None = None, wait: float | None = None
    ) -> JSONResponse:
        runtime: ApiRuntime = runtime_of(request)
        trace_id = _trace_id(request)
        request.state.trace_id = trace_id
        headers = {"X-Trace-Id": trace_id}
        dedup = definition.dedup
        key: str | None = None
        ttl = float(dedup.ttl_seconds if dedup else IDEMPOTENCY_TTL_SECONDS)
        claimed = False
        try:
            if definition.rate_limit is not None:
                limit = definition.rate_limit
                limiter = runtime.resources.rate_limiter(name, definition.name)
                decision = await limiter.take(limit.requests, limit.per_seconds)
                if not decision.allowed:
                    return JSONResponse(
                        error_body(f"rate limit of {limit.requests} per {limit.per_seconds}s reached"),
                        429,
                        {**headers, "Retry-After": str(decision.retry_after_seconds)},
                    )
            # Authentication has passed (before the body was read): the key is this caller's.
            digest: str | None = None
            if idempotency_key is not None:
                scope = caller_scope(request, definition.auth, runtime.settings)
                key, digest = scoped_idempotency_key(scope, idempotency_key), body_digest(payload)
            elif dedup is not None:
                field_key = dedup.key_of(payload.model_dump(mode="json", by_alias=True))
                if field_key is not None:
                    key = scoped_dedup_key(
                        caller_scope(request, definition.auth, runtime.settings), field_key
                    )
            if key is not None:
                hold = ttl if durable else definition.timeout_seconds + 5
                claim = await runtime.resources.dedup(name, definition.name).claim(key, ttl, hold, digest)
                if claim.conflict:
                    return JSONResponse(error_body(KEY_REUSED), 409, headers)
                claimed = claim.first
                if claim.response is not None:
                    if durable:  # the run that answered: its id follows from the key
                        headers["X-Workflow-Id"] = handler_workflow_id(name, definition.name, key)
                    return JSONResponse(claim.response, claim.status_code, {**headers, "X-Happ-Dedup": "hit"})
                if not claimed and not durable:
                    return JSONResponse(
                        error_body("the first delivery with this key is still running"),
                        409,
                        {**headers, "Retry-After": "1"},
                    )
                # Durable and still running: the same workflow id attaches to that run.
            reply = await run_for_request(
                runtime,
                name,
                definition,
                payload,
                trace_id,
                key,
                durable,
                DEFAULT_WAIT_SECONDS if wait is None else wait,
                fresh=claimed,
            )
        except Exception as exc:
            if claimed and key is not None:
                with contextlib.suppress(Exception):  # the answer below already says what failed
                    await runtime.resources.dedup(name, definition.name).release(key)
            return error_response(exc, trace_id, headers)
        if reply.workflow_id:
            headers["X-Workflow-Id"] = reply.workflow_id
        # The answer is kept for the key's TTL by whoever got it: the claimer, or a durable
        # delivery that attached to the run (the claimer may have answered 202 before its end).
        if key is not None and reply.status_code == 200 and (claimed or durable):
            await runtime.resources.dedup(name, definition.name).complete(key, ttl, reply.body, 200)
        return JSONResponse(reply.body, reply.status_code, headers)

    source = Annotated[model, Query()] if method == "GET" else Annotated[model, Body()]  # type: ignore[valid-type]
    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=source),
    ]
    if durable or definition.dedup is not None:
        params.append(_IDEMPOTENCY_KEY)
    if durable:
        params.append(_WAIT)
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = definition.name.replace("-", "_")
    options = definition.openapi
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=f"{name}:{definition.name}",
        summary=options.summary or definition.name,
        description=options.description or (definition.fn.__doc__ or "").strip() or None,
        tags=list(options.tags),
        deprecated=options.deprecated or None,
        response_model=definition.response_model,
        responses=_responses(definition, durable),
        openapi_extra=_openapi_extra(definition),
        dependencies=[Depends(webhook_auth(name, definition.auth))] if definition.auth else None,
    )


_IDEMPOTENCY_KEY = inspect.Parameter(
    "idempotency_key",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[!-~]+$",
            description="Deliveries with the same key from the same caller run once: a retry "
            "attaches to the first run or gets its answer, for 24 hours (or the handler's dedup "
            "TTL). The same key with another body is a 409. Printable ASCII, at most 255 characters.",
        ),
    ],
)
_WAIT = inspect.Parameter(
    "wait",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description=f"Seconds to wait for the durable run's result before answering 202 "
            f"(default {DEFAULT_WAIT_SECONDS:g}; 0 answers as soon as Temporal accepted the run).",
        ),
    ],
)
_TRACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _trace_id(request: Request) -> str:
    """The caller's `X-Request-Id` when it is a sane id (it ends up in logs and history), else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if _TRACE_ID.fullmatch(given) else uuid.uuid4().hex


def _responses(definition: HandlerDefinition, durable: bool) -> dict[int | str, dict[str, Any]]:
    # A handler may raise any happ error, so each status they map to can come back.
    codes = [400, 403, 404, 409, 413, 422, 500, 502, 503, 504]
    if definition.auth is not None:
        codes.append(401)
    if definition.rate_limit is not None:
        codes.append(429)
    responses = error_responses(*sorted(codes))
    if durable:
        responses[202] = {
            "description": "Accepted: the durable run is still going (see X-Workflow-Id)",
            "model": Accepted,
        }
    for status, spec in (definition.openapi.responses or {}).items():
        entry: dict[str, Any] = {"description": spec.get("description", "")}
        if "schema" in spec:
            entry["content"] = {"application/json": {"schema": spec["schema"]}}
        responses[status] = entry
    return responses


def _openapi_extra(definition: HandlerDefinition) -> dict[str, Any] | None:
    extra: dict[str, Any] = {}
    if isinstance(definition.auth, BearerAuth):
        extra["security"] = [{WEBHOOK_TOKEN_SCHEME: []}]
    elif isinstance(definition.auth, ElevenLabsAuth):
        extra["security"] = [{ELEVENLABS_SCHEME: []}]
    body = definition.openapi.request_body
    examples = definition.openapi.examples
    if not body and not examples:
        return extra or None
    request_body: dict[str, Any] = {}
    if body:
        if "description" in body:
            request_body["description"] = body["description"]
        if "required" in body:
            request_body["required"] = body["required"]
    content: dict[str, Any] = {}
    if body and "schema" in body:
        content["schema"] = body["schema"]
    if examples:
        content["examples"] = {k: {"value": v} for k, v in examples.items()}
    if content:
        request_body["content"] = {"application/json": content}
    return {**extra, "requestBody": request_body}
