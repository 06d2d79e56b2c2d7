"""Running a handler for a request: inline in this process, or durably as a `HandlerRun` workflow.

A durable run's workflow id is `{integration}:handler:{name}:{key}`: a retried delivery with the
same key attaches to the run in progress, or reads the result of the finished one, instead of
running twice. Once a dedup TTL has passed (`fresh=True`) the same key starts a new run.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.runtime import ApiRuntime
from happ_integ.durable import error_from_failure
from happ_integ.errors import DependencyUnavailable
from happ_integ.handler import HandlerDefinition
from happ_integ.inline import run_inline
from happ_integ.temporal import (
    HANDLER_RUN_WORKFLOW,
    HandlerRunInput,
    HandlerRunResult,
    handler_search_attributes,
    handler_workflow_id,
)


@dataclass(frozen=True)
class Outcome:
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
) -> Outcome:
    if not durable:
        response = await run_inline(
            runtime.resources, integration, definition, payload, trace_id, runtime.sink
        )
        return Outcome(200, response.model_dump(mode="json", by_alias=True))
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
) -> Outcome:
    client = await runtime.temporal()
    workflow_id = handler_workflow_id(integration, definition.name, key or uuid.uuid4().hex)
    # By alias: the workflow validates the payload again, the way the request did.
    run = HandlerRunInput(
        integration=integration,
        handler=definition.name,
        payload=payload.model_dump(mode="json", by_alias=True),
        trace_id=trace_id,
    )
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if fresh else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    )
    try:
        handle = await client.start_workflow(
            HANDLER_RUN_WORKFLOW,
            run,
            id=workflow_id,
            task_queue=runtime.integrations[integration].task_queue,
            result_type=HandlerRunResult,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            search_attributes=handler_search_attributes(integration, definition.name),
            static_summary=f"{integration}/{definition.name}",
        )
    except WorkflowAlreadyStartedError:
        # Same key, finished successfully before: answer with that run's result.
        handle = client.get_workflow_handle(workflow_id, result_type=HandlerRunResult)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise DependencyUnavailable("Temporal", "Temporal did not accept the run: try again") from None
        raise
    try:
        result = await asyncio.wait_for(handle.result(), wait_seconds) if wait_seconds > 0 else None
    except TimeoutError:
        result = None
    except WorkflowFailureError as exc:
        error = error_from_failure(exc.cause)
        error.details["workflow_id"] = workflow_id
        raise error from None
    if result is None:
        return Outcome(202, {"success": True, "accepted": True, "workflow_id": workflow_id}, workflow_id)
    return Outcome(200, result.response, workflow_id)
