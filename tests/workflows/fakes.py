"""Stand-ins for what the call workflows talk to, for time-skipping tests of the workflows alone.

`FakeHandlerRun` is registered under the name `HandlerRun`: the lookup answers a record and
variables (or, for a call whose metadata says `crm_down_at_dial`, fails the first time: the CRM
is down), the postcall handler answers the payload it received. `CallScript` holds the fake
activities' behaviour and records their calls; its activities carry the real names
(`voice.originate`, …), so the workflow under test cannot tell them from the real ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

with workflow.unsafe.imports_passed_through():
    from activities.calls import call_zones
    from happ_integ.calls.analysis import from_elevenlabs
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.contact_policy import DAY, ContactPolicy, decide_attempt
    from happ_integ.calls.contracts import (
        AnalysisRequest,
        CallBegin,
        CallFlowHandlers,
        CallRecord,
        CallRequest,
        ConversationRequest,
        ConversationStatus,
        DialCheck,
        DialPermit,
        OriginateCall,
        Originated,
        QueueRef,
        SlotGrant,
        SlotRelease,
        SlotRequest,
        WorkflowIds,
    )
    from happ_integ.calls.models import CallAnalysis, LookupResult, PostcallInfo
    from happ_integ.durable import error_to_failure
    from happ_integ.errors import HappError
    from happ_integ.temporal import HandlerRunInput, HandlerRunResult, queue_workflow_id

from workflows.call_queue import CallQueue


@workflow.defn(name="HandlerRun")
class FakeHandlerRun:
    @workflow.run
    async def run(self, inp: HandlerRunInput) -> HandlerRunResult:
        if inp.handler == "crm-lookup":
            again = workflow.info().workflow_id.endswith("-again")
            if inp.payload.get("metadata", {}).get("crm_down_at_dial") and not again:
                raise ApplicationError("NetHunt answered 503", type="UpstreamError", non_retryable=True)
            variables = {"client_name": "Іван"}
            if zone := inp.payload.get("metadata", {}).get("crm_timezone"):
                variables["timezone"] = zone  # a CRM field mapped to the `timezone` variable
            found = LookupResult(found=True, record_id="rec-1", variables=variables)
            return HandlerRunResult(response=found.model_dump(mode="json"))
        return HandlerRunResult(response={"success": True, "payload": inp.payload})


@dataclass
class CallScript:
    client: Client
    handling: CallHandling = field(default_factory=lambda: CallHandling(calling_hours=None))
    # The handlers call.begin names, as the real one reads them from the integration's call_flow.
    call_flow: CallFlowHandlers = field(
        default_factory=lambda: CallFlowHandlers(lookup="crm-lookup", postcall="crm-postcall")
    )
    capacity: int = 3
    originate_errors: list[HappError] = field(default_factory=list)  # raised by the next originates
    conversation: PostcallInfo | None = None  # what the ElevenLabs API answers (None: not found)
    # The conversation's status on the ElevenLabs API while `conversation` is None (None: no such
    # conversation), one per read, the last repeating; `status_reads` counts the reads.
    live_statuses: list[str | None] = field(default_factory=lambda: [None])
    status_reads: int = 0
    originates: list[tuple[datetime, OriginateCall]] = field(default_factory=list)
    records: list[CallRecord] = field(default_factory=list)
    fetches: int = 0
    analysis: CallAnalysis | None = None  # what the analysis model answers (None: ElevenLabs' own)
    analysis_fails: bool = False
    callbacks: list[CallRequest] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)  # numbers on the do-not-call list
    dial_checks: list[DialCheck] = field(default_factory=list)
    # contact_policy's caps, decided as `ContactAttempts.take_attempt` decides them, over the
    # dials held here (number → times), at the test server's time (`clock`). None: no caps.
    contact_policy: ContactPolicy | None = None
    contact_attempts: dict[str, list[datetime]] = field(default_factory=dict)
    clock: Callable[[], Awaitable[datetime]] | None = None
    # What the analysis answers for calls to one number (over `analysis`).
    analyses: dict[str, CallAnalysis] = field(default_factory=dict)

    @activity.defn(name="call.begin")
    async def begin(self, req: CallRequest) -> CallBegin:
        # The zones as the real call.begin names them (the callee's, for timezone "recipient").
        return CallBegin(
            handling=self.handling, call_flow=self.call_flow, zones=call_zones(self.handling, req)
        )

    @activity.defn(name="call.may_dial")
    async def may_dial(self, check: DialCheck) -> DialPermit:
        self.dial_checks.append(check)
        if check.phone_number in self.suppressed:
            return DialPermit(allowed=False, suppressed=True, reason="the number is on the do-not-call list")
        if self.contact_policy is not None:
            assert self.clock is not None, "caps need the test server's clock"
            now = await self.clock()
            taken = self.contact_attempts.setdefault(check.phone_number, [])
            recent = sorted((t for t in taken if t > now - DAY), reverse=True)
            cap = self.contact_policy.max_attempts_per_day
            grant = decide_attempt(
                self.contact_policy,
                now,
                latest_at=max(taken, default=None),
                cap_at=recent[cap - 1] if len(recent) >= cap else None,
                in_window=len(recent),
            )
            if not grant.allowed:
                return DialPermit(allowed=False, next_allowed_at=grant.next_allowed_at, reason=grant.reason)
            taken.append(now)
        return DialPermit()

    @activity.defn(name="call.record")
    async def record(self, rec: CallRecord) -> None:
        self.records.append(rec)

    @activity.defn(name="voice.originate")
    async def originate(self, arg: OriginateCall) -> Originated:
        self.originates.append((activity.info().current_attempt_scheduled_time, arg))
        if self.originate_errors:
            raise error_to_failure(self.originate_errors.pop(0))
        if arg.provider != "happ_voice":
            return Originated(provider_call_id=f"sip-{arg.attempt}", conversation_id=f"conv-el-{arg.attempt}")
        return Originated(provider_call_id=f"va-{arg.attempt}")

    @activity.defn(name="analysis.analyze")
    async def analyze(self, req: AnalysisRequest) -> CallAnalysis:
        if self.analysis_fails:
            raise RuntimeError("the analysis model is down")
        phone = next(c.phone_number for c in self.dial_checks if c.call_id == req.call_id)
        analysis = self.analyses.get(phone) or self.analysis or from_elevenlabs(req.info)
        if analysis.outcome == "do_not_call":
            self.suppressed.add(phone)  # as the real analysis.analyze puts the number on the list
        return analysis

    @activity.defn(name="call.schedule_callback")
    async def schedule_callback(self, req: CallRequest) -> str:
        self.callbacks.append(req)
        return req.call_id

    @activity.defn(name="elevenlabs.get_conversation")
    async def fetch_conversation(self, arg: ConversationRequest) -> PostcallInfo | None:
        self.fetches += 1
        return self.conversation

    @activity.defn(name="elevenlabs.conversation_status")
    async def conversation_status(self, arg: ConversationRequest) -> ConversationStatus:
        self.status_reads += 1
        if self.conversation is not None:
            return ConversationStatus(status="done", info=self.conversation)
        status = self.live_statuses.pop(0) if len(self.live_statuses) > 1 else self.live_statuses[0]
        return ConversationStatus(status=status)

    @activity.defn(name="queue.start")
    async def start_queue(self, ref: QueueRef) -> None:
        from control.client import start_call_queue  # tests may: only workflows/ and activities/ may not

        await start_call_queue(self.client, ref.integration)

    @activity.defn(name="queue.capacity")
    async def queue_capacity(self, ref: QueueRef) -> int:
        return self.capacity

    @activity.defn(name="queue.closed_holders")
    async def closed_workflows(self, arg: WorkflowIds) -> list[str]:
        closed = []
        for workflow_id in arg.ids:
            try:
                status = (await self.client.get_workflow_handle(workflow_id).describe()).status
            except RPCError:
                status = None
            if status != WorkflowExecutionStatus.RUNNING:
                closed.append(workflow_id)
        return closed

    def activities(self) -> list[Any]:
        return [
            self.begin,
            self.may_dial,
            self.record,
            self.originate,
            self.fetch_conversation,
            self.conversation_status,
            self.analyze,
            self.schedule_callback,
            self.start_queue,
            self.queue_capacity,
            self.closed_workflows,
        ]

    def statuses(self) -> list[str]:
        return [r.status.value for r in self.records]


@workflow.defn
class SlotHolder:
    """Takes one slot of the integration's CallQueue and holds it until told to `finish`."""

    def __init__(self) -> None:
        self._granted = False
        self._done = False

    @workflow.run
    async def run(self, integration: str) -> None:
        me = workflow.info().workflow_id
        queue = workflow.get_external_workflow_handle(queue_workflow_id(integration))
        await queue.signal(CallQueue.acquire, SlotRequest(holder=me, attempt=1))
        await workflow.wait_condition(lambda: self._granted)
        await workflow.wait_condition(lambda: self._done)
        await queue.signal(CallQueue.release, SlotRelease(holder=me, attempt=1))

    @workflow.signal(name="slot_granted")
    def slot_granted(self, grant: SlotGrant) -> None:
        self._granted = True

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def has_slot(self) -> bool:
        return self._granted and not self._done
