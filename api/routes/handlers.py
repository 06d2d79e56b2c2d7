"""The integration's own routes: one per handler endpoint, plus `POST /webhook/{name}` for event-only handlers.

Each route: authenticate → rate limit → dedup → run (inline or durable) → answer. The payload
model is the route's body (or query, for GET), so FastAPI validates it (422 with the field path)
and the OpenAPI document shows it.
"""

import contextlib
import inspect
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import authenticate
from api.deps import get_runtime
from api.dispatch import run_for_request
from api.errors import error_body, error_response
from api.runtime import ApiRuntime
from happ_integ.handler import HandlerDefinition
from happ_integ.integration import Integration, route_of

MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 30.0


def handler_router(integration: Integration) -> APIRouter:
    router = APIRouter()
    for definition in integration.handlers.values():
        method, _, path = route_of(definition).partition(" ")
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

    async def endpoint(request: Request, payload: BaseModel) -> JSONResponse:
        runtime: ApiRuntime = get_runtime(request)
        trace_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.trace_id = trace_id
        headers = {"X-Trace-Id": trace_id}
        dedup = definition.dedup
        key: str | None = None
        claimed = False
        try:
            await authenticate(request, runtime, name, definition.auth)
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
            key = request.headers.get("idempotency-key") or (
                dedup.key_of(payload.model_dump(mode="json", by_alias=True)) if dedup else None
            )
            if dedup is not None and key is not None:
                hold = dedup.ttl_seconds if durable else definition.timeout_seconds + 5
                claim = await runtime.resources.dedup(name, definition.name).claim(
                    key, dedup.ttl_seconds, hold
                )
                claimed = claim.first
                if claim.response is not None:
                    return JSONResponse(claim.response, claim.status_code, {**headers, "X-Happ-Dedup": "hit"})
                if not claimed and not durable:
                    return JSONResponse(
                        error_body("the first delivery with this key is still running"),
                        409,
                        {**headers, "Retry-After": "1"},
                    )
                # Durable and still running: the same workflow id attaches to that run.
            outcome = await run_for_request(
                runtime,
                name,
                definition,
                payload,
                trace_id,
                key,
                durable,
                _wait_seconds(request),
                fresh=claimed,
            )
        except Exception as exc:
            if claimed and key is not None:
                with contextlib.suppress(Exception):  # the answer below already says what failed
                    await runtime.resources.dedup(name, definition.name).release(key)
            return error_response(exc, trace_id, headers)
        if outcome.workflow_id:
            headers["X-Workflow-Id"] = outcome.workflow_id
        if claimed and key is not None and dedup is not None and outcome.status_code == 200:
            await runtime.resources.dedup(name, definition.name).complete(
                key, dedup.ttl_seconds, outcome.body, 200
            )
        return JSONResponse(outcome.body, outcome.status_code, headers)

    source = Annotated[model, Query()] if method == "GET" else Annotated[model, Body()]  # type: ignore[valid-type]
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
            inspect.Parameter("payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=source),
        ]
    )
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
        responses=_responses(definition),
        openapi_extra=_openapi_extra(definition),
    )


def _wait_seconds(request: Request) -> float:
    raw = request.query_params.get("wait")
    try:
        value = float(raw) if raw is not None else DEFAULT_WAIT_SECONDS
    except ValueError:
        value = DEFAULT_WAIT_SECONDS
    return max(0.0, min(value, MAX_WAIT_SECONDS))


def _responses(definition: HandlerDefinition) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {
        422: {"description": "Invalid payload: the field path and message"},
    }
    if definition.auth is not None:
        responses[401] = {"description": "Missing or wrong credentials"}
    if definition.rate_limit is not None:
        responses[429] = {"description": "Rate limit reached; see Retry-After"}
    if definition.durable or definition.event_only:
        responses[202] = {"description": "Accepted: the durable run is still going (see X-Workflow-Id)"}
        responses[503] = {"description": "Temporal or PostgreSQL unavailable: retry"}
    for status, spec in (definition.openapi.responses or {}).items():
        entry: dict[str, Any] = {"description": spec.get("description", "")}
        if "schema" in spec:
            entry["content"] = {"application/json": {"schema": spec["schema"]}}
        responses[status] = entry
    return responses


def _openapi_extra(definition: HandlerDefinition) -> dict[str, Any] | None:
    body = definition.openapi.request_body
    examples = definition.openapi.examples
    if not body and not examples:
        return None
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
    return {"requestBody": request_body}
