"""Running a handler for a request: inline in this process, or durably as a `HandlerRun` workflow.

A durable run's workflow id is `{integration}:handler:{name}:{key}`, the key being the caller's
scoped one (`api.idempotency`: `c1f…@order-42` for an Idempotency-Key, `c1f…:recordId:s.rec-1`
for a dedup field; hashed when long or odd, see `happ_integ.temporal.run_key`), or a fresh uuid
for a request with neither. A retried delivery with the same key attaches to the run in
progress, or reads the result of the finished one, instead of running twice; another caller's
key is another id. Once the key's TTL has passed (`fresh=True`) the same key starts a new run.

Ids of runs started before keys were scoped (`…:create-order:order-42`) are not looked up: a
delivery retried across that deploy runs once more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from api.runtime import ApiRuntime
from control.client import handler_result, start_handler_run
from happ_integ.handler import HandlerDefinition
from happ_integ.inline import run_inline


@dataclass(frozen=True)
class HandlerReply:
    """What the route answers for a handler run: its status code, JSON body and, for a durable run,
    the workflow id (`X-Workflow-Id`)."""

    status_code: int
    body: dict[str, Any]
    workflow_id: str | None = None


async def run_for_request(
    runtime: ApiRuntime,
    integration: str,
    definition: HandlerDefinition,
    payload: BaseModel,
    trace_id: str,
    key: str | None,
    durable: bool,
    wait_seconds: float,
    fresh: bool = False,
) -> HandlerReply:
    if not durable:
        response = await run_inline(
            runtime.resources, integration, definition, payload, trace_id, runtime.sink
        )
        return HandlerReply(200, response.model_dump(mode="json", by_alias=True))
    return await run_durable(runtime, integration, definition, payload, trace_id, key, wait_seconds, fresh)


async def run_durable(
    runtime: ApiRuntime,
    integration: str,
    definition: HandlerDefinition,
    payload: BaseModel,
    trace_id: str,
    key: str | None,
    wait_seconds: float,
    fresh: bool = False,
) -> HandlerReply:
    handle = await start_handler_run(
        await runtime.temporal(),
        integration,
        definition,
        # By alias: the workflow validates the payload again, the way the request did.
        payload.model_dump(mode="json", by_alias=True),
        key=key or uuid.uuid4().hex,
        trace_id=trace_id,
        fresh=fresh,
    )
    result = await handler_result(handle, wait_seconds)
    if result is None:
        return HandlerReply(202, {"success": True, "accepted": True, "workflow_id": handle.id}, handle.id)
    return HandlerReply(200, result.response, handle.id)
