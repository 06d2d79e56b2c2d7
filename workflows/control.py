"""Starting, signalling, updating and querying our workflows: their ids, search attributes and
the one mapping of Temporal's errors onto happ errors.

    handle = await start_handler_run(client, "sofa", definition, payload, key="rec-1", trace_id=t)
    result = await handler_result(handle, wait_seconds=30)       # None: still running

Every caller (the gateway, schedules, activities that start a workflow) goes through here, so an
id format or an error translation exists once. Workflows are named by typed reference
(`HandlerRun.run`), never by a string.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from happ_integ.durable import error_from_failure
from happ_integ.errors import Conflict, DependencyUnavailable, HappError, NotFound, ValidationFailed
from happ_integ.handler import HandlerDefinition
from happ_integ.temporal import (
    HANDLER_KEY,
    INTEGRATION_KEY,
    HandlerRunInput,
    HandlerRunResult,
    task_queue_for,
)
from workflows.handler_run import HandlerRun

# A handler run that is still going after this long is stopped by Temporal and shows as timed out,
# so a run whose code can never finish does not stay open (or retry) forever.
HANDLER_RUN_TIMEOUT_SECONDS = 3600

_PLAIN_KEY = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}


def run_key(key: str) -> str:
    """A key as it may appear in a workflow id: itself when short and plain, else a digest of it.

    Workflow ids are limited (about 1,000 bytes) and show in the Web UI; a long or odd dedup key
    (an `Idempotency-Key` header, a CRM record id) is hashed so any key makes a valid, stable id.
    """
    if _PLAIN_KEY.fullmatch(key):
        return key
    return "h-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def handler_workflow_id(integration: str, handler: str, key: str) -> str:
    return f"{integration}:handler:{handler}:{run_key(key)}"


def schedule_id(integration: str, handler: str) -> str:
    return f"{integration}:{handler}"


def handler_search_attributes(integration: str, handler: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(INTEGRATION_KEY, integration), SearchAttributePair(HANDLER_KEY, handler)]
    )


def temporal_error(exc: BaseException, workflow_id: str | None = None) -> HappError | None:
    """What a Temporal client error means to our caller; None when it is not one of Temporal's."""
    error: HappError | None = None
    if isinstance(exc, HappError):
        error = exc
    elif isinstance(exc, WorkflowFailureError | WorkflowUpdateFailedError):
        error = error_from_failure(exc.cause)
    elif isinstance(exc, WorkflowQueryRejectedError | WorkflowQueryFailedError):
        error = Conflict(f"the workflow did not answer the query: {exc}")
    elif isinstance(exc, WorkflowAlreadyStartedError):
        error = Conflict("a workflow with this id already ran")
    elif isinstance(exc, RPCError):
        if exc.status in _UNAVAILABLE:
            error = DependencyUnavailable("Temporal", "Temporal did not accept the request: try again")
        elif exc.status == RPCStatusCode.NOT_FOUND:
            error = NotFound("no such workflow")
        elif exc.status == RPCStatusCode.ALREADY_EXISTS:
            error = Conflict("a workflow with this id is already running")
        elif exc.status == RPCStatusCode.FAILED_PRECONDITION:
            error = Conflict("the workflow has already finished")
        elif exc.status == RPCStatusCode.INVALID_ARGUMENT:
            error = ValidationFailed("Temporal refused the request as invalid")
    if error is not None and workflow_id is not None:
        error.details.setdefault("workflow_id", workflow_id)
    return error


@contextmanager
def temporal_errors(workflow_id: str | None = None) -> Iterator[None]:
    """Raise Temporal's client errors as happ errors (503 when Temporal is down, 404, 409 …)."""
    try:
        yield
    except Exception as exc:
        error = temporal_error(exc, workflow_id)
        if error is None or error is exc:
            raise
        raise error from None


async def start_handler_run(
    client: Client,
    integration: str,
    definition: HandlerDefinition,
    payload: dict[str, Any],
    *,
    key: str,
    trace_id: str | None = None,
    fresh: bool = False,
) -> WorkflowHandle[Any, HandlerRunResult]:
    """Start (or attach to) the run `{integration}:handler:{name}:{key}`.

    A retried delivery with the same key attaches to the run in progress, or reads the result of
    the one that succeeded; `fresh=True` (a dedup TTL has passed) starts a new run instead.
    """
    workflow_id = handler_workflow_id(integration, definition.name, key)
    run = HandlerRunInput(
        integration=integration, handler=definition.name, payload=payload, trace_id=trace_id
    )
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if fresh else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    )
    with temporal_errors(workflow_id):
        try:
            return await client.start_workflow(
                HandlerRun.run,
                run,
                id=workflow_id,
                task_queue=task_queue_for(integration),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=reuse,
                execution_timeout=timedelta(seconds=HANDLER_RUN_TIMEOUT_SECONDS),
                search_attributes=handler_search_attributes(integration, definition.name),
                static_summary=f"{integration}/{definition.name}",
            )
        except WorkflowAlreadyStartedError:
            # Same key, finished successfully before: its result is the answer.
            return client.get_workflow_handle_for(HandlerRun.run, workflow_id)


async def handler_result(
    handle: WorkflowHandle[Any, HandlerRunResult], wait_seconds: float
) -> HandlerRunResult | None:
    """The run's result, or None if it has not finished within `wait_seconds`; a failed run raises
    the happ error it failed with (carrying the workflow id)."""
    if wait_seconds <= 0:
        return None
    with temporal_errors(handle.id):
        try:
            return await asyncio.wait_for(handle.result(), wait_seconds)
        except TimeoutError:
            return None
