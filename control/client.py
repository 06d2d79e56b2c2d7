"""Starting, signalling, updating and querying our workflows: their search attributes and the
one mapping of Temporal's errors onto happ errors (the ids are named in `happ_integ.temporal`).

    handle = await start_handler_run(client, "sofa", definition, payload, key="rec-1", trace_id=t)
    result = await handler_result(handle, wait_seconds=30)       # None: still running

Every caller (the gateway, schedules, activities that start a workflow) goes through here, so an
id format or an error translation exists once. Workflows are named by typed reference
(`HandlerRun.run`), never by a string.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from happ_integ.calls.config import CallHandling
from happ_integ.calls.contracts import CallRequest, QueueState
from happ_integ.calls.models import (
    CallEvent,
    CallEventAnswer,
    CallState,
    CallStatus,
    PostcallAnswer,
    PostcallEvent,
)
from happ_integ.calls.phones import mask_phone, normalize_phone
from happ_integ.durable import error_from_failure
from happ_integ.errors import (
    Conflict,
    DependencyUnavailable,
    HappError,
    NotFound,
    ValidationFailed,
    WorkflowFinished,
)
from happ_integ.handler import HandlerDefinition
from happ_integ.ops import Resources
from happ_integ.temporal import (
    CALL_ATTEMPT_KEY,
    CALL_STATUS_KEY,
    CAMPAIGN_ID_KEY,
    HANDLER_KEY,
    INTEGRATION_KEY,
    HandlerRunInput,
    HandlerRunResult,
    call_workflow_id,
    handler_workflow_id,
    queue_workflow_id,
    task_queue_for,
)
from workflows.call_queue import CallQueue
from workflows.handler_run import HandlerRun
from workflows.outbound_call import OutboundCall

# A handler run that is still going after this long is stopped by Temporal and shows as timed out,
# so a run whose code can never finish does not stay open (or retry) forever.
HANDLER_RUN_TIMEOUT_SECONDS = 3600

log = logging.getLogger("happ.temporal")
T = TypeVar("T")

_UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}


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
    elif isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The update is accepted or still waiting for the worker; resent with the same update id
        # it is answered once, with the first answer.
        error = DependencyUnavailable("Temporal", "the workflow did not answer in time: try again")
    elif isinstance(exc, WorkflowQueryRejectedError | WorkflowQueryFailedError):
        error = Conflict(f"the workflow did not answer the query: {exc}")
    elif isinstance(exc, WorkflowAlreadyStartedError):
        error = Conflict("a workflow with this id already ran")
    elif isinstance(exc, RPCError):
        if exc.status in _UNAVAILABLE:
            # Temporal's reason (overloaded, a limit, not reachable) is for the operator's log.
            log.warning("Temporal refused a request for %s: %s %s", workflow_id, exc.status.name, exc.message)
            error = DependencyUnavailable("Temporal", "Temporal did not accept the request: try again")
        elif exc.status == RPCStatusCode.NOT_FOUND:
            error = NotFound("no such workflow")
        elif exc.status == RPCStatusCode.ALREADY_EXISTS:
            error = Conflict("a workflow with this id is already running")
        elif exc.status == RPCStatusCode.FAILED_PRECONDITION:
            error = WorkflowFinished("the workflow has already finished")
        elif exc.status == RPCStatusCode.INVALID_ARGUMENT:
            # Temporal's own words: they name the argument (a search attribute, an id), not payloads.
            error = ValidationFailed(f"Temporal refused the request: {exc.message}")
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


# The call ---------------------------------------------------------------------------------------


def call_search_attributes(
    integration: str, status: CallStatus, attempt: int, campaign_id: str | None = None
) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(INTEGRATION_KEY, integration),
        SearchAttributePair(CALL_STATUS_KEY, status.value),
        SearchAttributePair(CALL_ATTEMPT_KEY, attempt),
    ]
    if campaign_id is not None:
        pairs.append(SearchAttributePair(CAMPAIGN_ID_KEY, campaign_id))
    return TypedSearchAttributes(pairs)


async def start_call(client: Client, request: CallRequest) -> WorkflowHandle[Any, CallState]:
    """Start the call's `OutboundCall` (or attach to it: a retried request starts nothing new).

    The memo carries the number masked, so the Web UI's list tells calls apart without showing it.
    """
    workflow_id = call_workflow_id(request.integration, request.call_id)
    masked = mask_phone(request.phone_number)
    with temporal_errors(workflow_id):
        return await client.start_workflow(
            OutboundCall.run,
            request,
            id=workflow_id,
            task_queue=task_queue_for(request.integration),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=call_search_attributes(
                request.integration, CallStatus.SCHEDULED, 0, request.campaign_id
            ),
            memo={"phone": masked},
            static_summary=f"{request.integration} call {masked}",
        )


# The ids originate gives calls: a webhook naming one reaches its workflow without a lookup.
OUR_CALL_ID = re.compile(r"c_[0-9a-f]{20}")


async def originate_call(
    resources: Resources,
    client: Client,
    integration: str,
    raw_phone: str,
    metadata: dict[str, Any],
    handling: CallHandling,
) -> tuple[str, bool]:
    """A new call to the number (E.164 from `raw_phone`), or the one already in flight to it:
    `(call_id, created)`. Its row is claimed first, so two requests for one number make one call;
    if Temporal refuses the start, the claim is taken back and the error raised."""
    phone = normalize_phone(raw_phone, handling.default_region)
    calls = resources.calls(integration)
    new_id = f"c_{uuid.uuid4().hex[:20]}"  # the shape OUR_CALL_ID matches
    call_id, created = await calls.claim(new_id, phone, call_workflow_id(integration, new_id), metadata)
    try:
        # For a call already in flight this attaches to its workflow (or starts one its row waits for).
        await start_call(
            client,
            CallRequest(integration=integration, call_id=call_id, phone_number=phone, metadata=metadata),
        )
    except HappError:
        if created:
            await calls.forget_claim(call_id)
        raise
    return call_id, created


async def start_call_queue(client: Client, integration: str) -> None:
    with temporal_errors(queue_workflow_id(integration)):
        await client.start_workflow(
            CallQueue.run,
            QueueState(integration=integration),
            id=queue_workflow_id(integration),
            task_queue=task_queue_for(integration),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(INTEGRATION_KEY, integration)]),
            static_summary=f"{integration}: concurrency of its calls",
        )


def _update_id(kind: str, identity: tuple[object, ...], *detail: object) -> str | None:
    """A stable id for an update about one physical event, so Temporal answers a redelivery with
    the first answer. `identity` must name the event (a provider call id, a conversation id);
    without one there is no id (a fresh one per delivery) and the workflow's own rules tell a
    repeat from a new event."""
    if not any(identity):
        return None
    digest = hashlib.sha256(repr((identity, detail)).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{kind}:{digest}"


# How long a webhook waits for its call's Update when Temporal's answer is slow (a busy worker or
# server): the Update is sent again with the same id, which Temporal answers once, so a resend
# never applies an event twice. Past this the caller gets 503 with Retry-After.
UPDATE_PATIENCE_SECONDS = 60.0


async def _patient_update(
    execute: Callable[..., Awaitable[T]], update: Any, event: Any, update_id: str | None
) -> T:
    update_id = update_id or f"delivery:{uuid.uuid4().hex}"
    deadline = time.monotonic() + UPDATE_PATIENCE_SECONDS
    while True:
        try:
            return await execute(update, event, id=update_id)
        except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
            # Only Temporal's own deadline is waited out; a cancelled request stays cancelled.
            if not isinstance(exc.__cause__, RPCError) or time.monotonic() > deadline:
                raise
            log.warning("the Update %s was not answered in time: sent again", update_id)
        except RPCError as exc:
            # "workflow update was aborted": the server dropped it before the worker saw it (its
            # cache of open workflows was full). A server out of reach is answered 503 at once.
            aborted = exc.status == RPCStatusCode.UNAVAILABLE and "aborted" in exc.message
            if not aborted or time.monotonic() > deadline:
                raise
            log.warning("the Update %s was refused (%s): sent again", update_id, exc.message)
            await asyncio.sleep(1)


async def send_call_event(
    client: Client, integration: str, call_id: str, event: CallEvent
) -> CallEventAnswer:
    workflow_id = call_workflow_id(integration, call_id)
    update_id = _update_id(
        "call-event", (event.provider_call_id, event.conversation_id), event.event_type, event.duration
    )
    handle = client.get_workflow_handle_for(OutboundCall.run, workflow_id)
    with temporal_errors(workflow_id):
        return await _patient_update(handle.execute_update, OutboundCall.call_event, event, update_id)


async def send_postcall(
    client: Client, integration: str, call_id: str, event: PostcallEvent
) -> PostcallAnswer:
    workflow_id = call_workflow_id(integration, call_id)
    update_id = _update_id("postcall", (event.info.conversation_id, event.audio_document_id), event.type)
    handle = client.get_workflow_handle_for(OutboundCall.run, workflow_id)
    with temporal_errors(workflow_id):
        return await _patient_update(handle.execute_update, OutboundCall.postcall, event, update_id)


async def apply_stored_webhooks(
    resources: Resources, client: Client, integration: str, call_id: str, conversation_id: str
) -> int:
    """Send the call the verified post-call webhooks that were stored before it was known to hold
    `conversation_id` (a fast initiation failure beats the outbound-call answer); each is linked
    to the call once sent. Returns how many were applied."""
    calls = resources.calls(integration)
    applied = 0
    for document in await calls.unmatched(conversation_id):
        stored = document["body"] if isinstance(document["body"], dict) else {}
        kind = str(stored.get("type") or "")
        data = stored.get("data")
        data = data if isinstance(data, dict) else {}
        # The audio of an unmatched webhook is not kept (`without_audio`): nothing to apply.
        event = None
        if kind != "post_call_audio":
            event = await calls.store_postcall(
                call_id, kind, data, key=conversation_id, conversation_id=conversation_id
            )
        if event is not None:
            try:
                await send_postcall(client, integration, call_id, event)
                applied += 1
            except (NotFound, WorkflowFinished):
                pass  # the call has ended: nothing left to apply it to
        await calls.claim_document(document["id"], call_id)
    return applied


async def cancel_call(client: Client, integration: str, call_id: str) -> CallState:
    workflow_id = call_workflow_id(integration, call_id)
    handle = client.get_workflow_handle_for(OutboundCall.run, workflow_id)
    with temporal_errors(workflow_id):
        return await handle.execute_update(OutboundCall.cancel)


async def call_state(client: Client, integration: str, call_id: str) -> CallState:
    """The call's state, also once it has ended (a closed workflow still answers queries)."""
    workflow_id = call_workflow_id(integration, call_id)
    handle = client.get_workflow_handle_for(OutboundCall.run, workflow_id)
    with temporal_errors(workflow_id):
        return await handle.query(OutboundCall.state)


async def queue_state(client: Client, integration: str) -> QueueState:
    handle = client.get_workflow_handle_for(CallQueue.run, queue_workflow_id(integration))
    with temporal_errors(queue_workflow_id(integration)):
        return await handle.query(CallQueue.snapshot)


class TemporalCallControl:
    """`happ_integ.calls.contracts.CallControl` on a Temporal client: what the call's activities
    ask of the client side (the worker builds one and hands it to `worker_activities`)."""

    def __init__(self, resources: Resources, client: Client) -> None:
        self._resources = resources
        self._client = client

    async def start_call(self, request: CallRequest) -> None:
        await start_call(self._client, request)

    async def start_call_queue(self, integration: str) -> None:
        await start_call_queue(self._client, integration)

    async def apply_stored_webhooks(self, integration: str, call_id: str, conversation_id: str) -> int:
        return await apply_stored_webhooks(
            self._resources, self._client, integration, call_id, conversation_id
        )

    async def cancel_call(self, integration: str, call_id: str) -> bool:
        try:
            await cancel_call(self._client, integration, call_id)
        except (NotFound, WorkflowFinished):
            return False  # it has ended already
        return True
