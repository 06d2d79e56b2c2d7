"""The harness of the call workflow tests: a `Call` under test and the `calls` fixture that starts
one on the time-skipping server, with the stand-ins of `fakes` for everything it talks to."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from control.client import call_state, send_call_event, send_postcall, start_call
from happ_integ import CallFlow, Context, Integration, define_handler, registry
from happ_integ.calls.config import CallHandling
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.calls.contracts import CallFlowHandlers, CallRequest
from happ_integ.calls.models import (
    CallEvent,
    CallState,
    CallStatus,
    LookupPayload,
    LookupResult,
    PostcallEvent,
    PostcallInfo,
    PostcallPayload,
)
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from happ_integ.temporal import queue_workflow_id
from tests.workflows.fakes import CallScript, FakeHandlerRun
from worker import workflow_runner
from workflows import CallQueue, OutboundCall

T = TypeVar("T")


async def eventually(
    read: Callable[[], Awaitable[T]],
    test: Callable[[T], bool],
    seconds: float,
    describe: Callable[[T], str],
) -> T:
    """What `read` answers once `test` holds, polled every 50 ms; an AssertionError with
    `describe` of the last answer after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await read()
        if test(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(describe(value))
        await asyncio.sleep(0.05)


@define_handler(name="crm-lookup")
async def lookup(ctx: Context[LookupPayload]) -> LookupResult:
    return LookupResult()


@define_handler(name="crm-postcall")
async def postcall(ctx: Context[PostcallPayload]) -> LookupResult:
    return LookupResult()


@dataclass
class Call:
    env: WorkflowEnvironment
    script: CallScript
    integration: str
    call_id: str
    handle: WorkflowHandle[OutboundCall, CallState]

    async def state(self) -> CallState:
        return await call_state(self.env.client, self.integration, self.call_id)

    async def until(self, test: Callable[[CallState], bool], seconds: float = 10) -> CallState:
        return await eventually(
            self.state,
            test,
            seconds,
            lambda s: f"the call never got there; it is {s.status} (attempt {s.attempt})",
        )

    async def dialing(self, attempt: int) -> CallState:
        return await self.until(lambda s: s.status is CallStatus.DIALING and s.attempt == attempt)

    async def event(self, kind: str, duration: float | None = None, **extra: object) -> object:
        event = CallEvent(event_type=kind, duration=duration, **extra)  # type: ignore[arg-type]
        return await send_call_event(self.env.client, self.integration, self.call_id, event)

    async def transcription(self, duration: float = 45, conversation_id: str = "conv-1") -> object:
        info = PostcallInfo(
            conversation_id=conversation_id,
            document_id=f"transcript:{conversation_id}",
            duration_seconds=duration,
            call_successful="success",
            transcript_summary="Клієнт зацікавлений",
        )
        event = PostcallEvent(type="post_call_transcription", info=info)
        return await send_postcall(self.env.client, self.integration, self.call_id, event)

    async def result(self) -> CallState:
        try:
            return await asyncio.wait_for(self.handle.result(), 30)
        except TimeoutError:
            state = await self.state()
            described = (await self.handle.describe()).raw_description
            pending = [(a.activity_type.name, a.state, a.attempt) for a in described.pending_activities]
            history = await self.handle.fetch_history()
            last = [
                f"{e.event_time.ToDatetime():%H:%M:%S} {EventType.Name(e.event_type).removeprefix('EVENT_TYPE_')}"
                for e in history.events[-8:]
            ]
            raise AssertionError(
                f"the call did not end: {state.status} attempt {state.attempt}, pending {pending}, "
                f"children {[c.workflow_id for c in described.pending_children]}, "
                f"server time {await self.env.get_current_time():%H:%M:%S}, last events {last}"
            ) from None


def timer_story(history: WorkflowHistory) -> list[tuple[str, str]]:
    """(summary, how it ended) of each timer in `history`: "cancelled", "fired" or "running"."""
    started: dict[int, str] = {}
    ended: dict[int, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            summary = event.user_metadata.summary
            started[event.event_id] = (
                pydantic_data_converter.payload_converter.from_payload(summary, str) if summary.data else ""
            )
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            ended[event.timer_canceled_event_attributes.started_event_id] = "cancelled"
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            ended[event.timer_fired_event_attributes.started_event_id] = "fired"
    return [(summary, ended.get(event_id, "running")) for event_id, summary in started.items()]


def call_flow_integration(name: str) -> Integration:
    return Integration(
        name, handlers=[lookup, postcall], call_flow=CallFlow(lookup="crm-lookup", postcall="crm-postcall")
    )


async def calls_fixture(
    time_skipping_env: WorkflowEnvironment, name: str | None = None
) -> AsyncIterator[Callable[..., object]]:
    env = time_skipping_env
    name = name or f"t{uuid.uuid4().hex[:10]}"
    integration = call_flow_integration(name)
    registry.install({name: integration}, CaptureSink(), Settings())
    script = CallScript(env.client)
    worker = Worker(
        env.client,
        task_queue=f"happ-{name}",
        workflows=[OutboundCall, CallQueue, FakeHandlerRun],
        activities=script.activities(),
        workflow_runner=workflow_runner(),
    )

    started: list[str] = []

    async def start(
        handling: CallHandling | None = None,
        call_flow: CallFlowHandlers | None = None,
        contact_policy: ContactPolicy | None = None,
        dialled_before: dict[str, list[datetime]] | None = None,
        **request_fields: object,
    ) -> Call:
        """Start a call to +380994829573; `contact_policy` caps its dials, counting the number's
        `dialled_before` (number → times) as earlier attempts."""
        if handling is not None:
            script.handling = handling
        if call_flow is not None:
            script.call_flow = call_flow
        if contact_policy is not None:
            script.contact_policy, script.clock = contact_policy, env.get_current_time
            script.contact_attempts = {n: list(t) for n, t in (dialled_before or {}).items()}
        call_id = f"c_{uuid.uuid4().hex[:12]}"
        request = CallRequest(
            integration=name,
            call_id=call_id,
            phone_number="+380994829573",
            **request_fields,  # type: ignore[arg-type]
        )
        handle = await start_call(env.client, request)
        started.append(handle.id)
        return Call(env, script, name, call_id, handle)

    async with worker:
        yield start
        # Nothing of this test may stay open: the server skips time only while no task is pending.
        for workflow_id in [*started, queue_workflow_id(name)]:
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(workflow_id).terminate("the test is over")


def handling(**options: object) -> CallHandling:
    return CallHandling(calling_hours=None, **options)  # type: ignore[arg-type]
