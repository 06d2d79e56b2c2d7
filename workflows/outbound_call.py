"""`OutboundCall`: one outbound call, from its first attempt to the CRM update.

Workflow id `{integration}:call:{call_id}`; search attributes `Integration`, `CallStatus`,
`CallAttempt`; the memo holds the number masked. For each attempt the call waits for the calling
window (holding no slot), takes a slot from the integration's `CallQueue`, dials through the voice
assistant and follows the call events; an attempt that was short, unanswered, busy or timed out
is retried after the configured delay until `max_attempts`. An answered call then waits for the
post-call webhook (reading the conversation from ElevenLabs when it does not come) and runs the
integration's postcall handler. Every status change is written to `{integration}_calls`.

Updates `call_event`, `postcall` and `cancel` answer with the workflow's own decision; the query
`state` returns the whole `CallState`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities, AnalysisRequest
    from activities.calls import (
        CallActivities,
        ConversationRequest,
        ConversationStatus,
        OriginateCall,
        QueueRef,
    )
    from happ_integ import registry
    from happ_integ.calls.analysis import from_elevenlabs
    from happ_integ.calls.clock import next_window_start
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.models import (
        Attempt,
        CallAnalysis,
        CallEvent,
        CallEventAnswer,
        CallRecord,
        CallRequest,
        CallState,
        CallStatus,
        LookupPayload,
        LookupResult,
        Outcome,
        PostcallAnswer,
        PostcallEvent,
        PostcallInfo,
        PostcallPayload,
        SlotGrant,
        SlotRelease,
        SlotRequest,
    )
    from happ_integ.calls.phones import mask_phone
    from happ_integ.calls.rules import Decision, after_attempt, classify_end, provider_outcome
    from happ_integ.durable import error_from_failure
    from happ_integ.errors import RetryableError
    from happ_integ.temporal import (
        CALL_ATTEMPT_KEY,
        CALL_STATUS_KEY,
        HandlerRunInput,
        HandlerRunResult,
        handler_workflow_id,
        queue_workflow_id,
    )

from workflows import call_metrics
from workflows.call_queue import SLOT_GRANTED, CallQueue
from workflows.handler_run import HandlerRun

# Database writes retry until PostgreSQL answers again: a status change is never dropped.
_STORE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# About five tries over two minutes; a 4xx answer (non-retryable) is not tried again.
_ORIGINATE = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
)
# An ElevenLabs-dialled attempt no webhook ended by its ring timeout: its conversation's status
# is read then, and again after growing pauses while the call is on (runs from before the patch
# first read it after the longest call).
_ELEVENLABS_STATUS_PATCH = "elevenlabs-status-after-ring-timeout"
_STATUS_FIRST_PAUSE = timedelta(seconds=5)
_STATUS_LONGEST_PAUSE = timedelta(minutes=5)
_RECOVERY_WINDOW = timedelta(hours=24)
_RECOVERY_FIRST_PAUSE = timedelta(minutes=1)
_RECOVERY_LONGEST_PAUSE = timedelta(hours=1)


# The framework's own code, no integration's: it runs outside the sandbox, which would rebuild this
# module for every run and wrap every payload it converts (a fifth of a busy worker's samples in
# the call-throughput profile). Its determinism is held by
# the replay tests over recorded histories (tests/workflows/test_call_replay.py).
@workflow.defn(sandboxed=False)
class OutboundCall:
    @workflow.init
    def __init__(self, request: CallRequest) -> None:
        self._request = request
        self._state = CallState(
            call_id=request.call_id,
            integration=request.integration,
            phone_masked=mask_phone(request.phone_number),
            previous_call_id=request.previous_call_id,
        )
        self._handling = CallHandling()
        self._attempt: Attempt | None = None  # the attempt dialing or talking
        self._decision: Decision | None = None  # what its end decided
        self._granted: int | None = None  # the attempt the queue last granted a slot to
        self._holding: int | None = None  # the attempt holding a slot now
        self._looked_up = False
        self._lookup_failed = False
        self._metrics = call_metrics.CallMetrics(request.integration)

    @workflow.run
    async def run(self, request: CallRequest) -> CallState:
        self._metrics.started()
        begin = await workflow.execute_local_activity_method(
            CallActivities.begin, request, start_to_close_timeout=timedelta(seconds=30), retry_policy=_STORE
        )
        self._handling = begin.handling
        try:
            answered = await self._attempts()
        finally:
            await self._release()
        if answered:
            await self._after_the_call()
        return self._state

    # Attempts ---------------------------------------------------------------------------------

    async def _attempts(self) -> bool:
        """Dial until an attempt is answered (True), or the call ends without one (False)."""
        while True:
            if self._state.cancel_requested:
                await self._finish(CallStatus.CANCELLED, "cancelled before it was answered")
                return False
            earliest = max(workflow.now(), self._request.not_before or workflow.now())
            opens = next_window_start(earliest, self._handling.calling_hours)
            if opens > workflow.now():
                await self._set(CallStatus.SCHEDULED, next_attempt_at=opens)
                await self._sleep_until(opens)
                continue
            if not self._looked_up:
                await self._lookup()
            await self._set(CallStatus.QUEUED)
            if not await self._acquire():
                continue
            try:
                decision = await self._dial()
            finally:
                await self._release()
            if decision is None:
                return False
            if decision.kind == "postcall":
                await self._set(CallStatus.WAITING_POSTCALL)
                return True
            if decision.kind == "exhausted":
                await self._finish(
                    CallStatus.EXHAUSTED, f"no answered call in {self._state.attempt} attempts"
                )
                return False
            if decision.kind == "cancelled":
                await self._finish(CallStatus.CANCELLED, "cancelled: no further attempt")
                return False
            assert decision.retry_at is not None
            self._metrics.retried(self._state.attempts[-1].outcome)
            await self._set(CallStatus.SCHEDULED, next_attempt_at=decision.retry_at)
            await self._sleep_until(decision.retry_at)

    async def _dial(self) -> Decision | None:
        """One attempt, from originate to its end; None when the call failed for good."""
        self._state.attempt += 1
        attempt = Attempt(number=self._state.attempt, started_at=workflow.now())
        self._state.attempts.append(attempt)
        self._attempt, self._decision = attempt, None
        await self._set(CallStatus.DIALING)
        try:
            originated = await workflow.execute_activity_method(
                CallActivities.originate,
                OriginateCall(
                    integration=self._request.integration,
                    call_id=self._request.call_id,
                    phone_number=self._request.phone_number,
                    attempt=attempt.number,
                    variables={**self._state.variables, "call_id": self._request.call_id},
                    provider=self._handling.provider,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_ORIGINATE,
                summary=f"attempt {attempt.number}",
            )
        except ActivityError as exc:
            error = error_from_failure(exc.cause)
            attempt.error = error.message
            if not isinstance(error, RetryableError):
                # The voice assistant refused the call (4xx, or no credentials): retrying cannot help.
                self._attempt = None
                await self._finish(CallStatus.FAILED, f"originate refused: {error.message}")
                return None
            self._end_attempt(attempt, Outcome.ORIGINATE_FAILED, 0)
        else:
            attempt.provider_call_id = attempt.provider_call_id or originated.provider_call_id
            self._state.provider_call_id = attempt.provider_call_id
            if originated.conversation_id:
                attempt.conversation_id = self._state.conversation_id = originated.conversation_id
        if self._handling.provider != "happ_voice":
            await self._follow_elevenlabs_call(attempt)
            self._attempt = None
            assert self._decision is not None
            return self._decision
        if self._decision is None and attempt.answered_at is None:
            if not await self._wait(
                lambda: attempt.answered_at is not None or self._decision is not None,
                timedelta(seconds=self._handling.ring_timeout_seconds),
            ):
                self._end_attempt(attempt, Outcome.RING_TIMEOUT, 0)
        if attempt.answered_at is not None and attempt.outcome in (None, Outcome.ANSWERED):
            await self._set(CallStatus.IN_PROGRESS)
            if self._decision is None and not await self._wait(
                lambda: self._decision is not None, timedelta(seconds=self._handling.max_call_seconds)
            ):
                # The call_end never came: the call ran its longest, so it was answered.
                self._end_attempt(attempt, Outcome.ANSWERED, self._handling.max_call_seconds)
        self._attempt = None
        assert self._decision is not None
        return self._decision

    async def _follow_elevenlabs_call(self, attempt: Attempt) -> None:
        """An attempt ElevenLabs dials sends no call events: its post-call webhooks end it (the
        transcript with its duration, or an initiation failure). When neither comes, the
        conversation is read from the ElevenLabs API; nothing found means nobody answered."""
        handling = self._handling
        if attempt.conversation_id and workflow.patched(_ELEVENLABS_STATUS_PATCH):
            await self._follow_elevenlabs_status(attempt, attempt.conversation_id)
            return
        # Runs from before the patch: the API was first asked after the longest call.
        if self._decision is None:
            await self._wait(
                lambda: self._decision is not None,
                timedelta(seconds=handling.ring_timeout_seconds + handling.max_call_seconds),
            )
        deadline = workflow.now() + timedelta(seconds=handling.postcall_timeout_seconds)
        pause = timedelta(seconds=30)
        while self._decision is None and workflow.now() < deadline and attempt.conversation_id:
            info = await self._conversation(attempt.conversation_id)
            if info is not None and self._decision is None:
                self._end_from_conversation(attempt, info)
                break
            await self._wait(lambda: self._decision is not None, min(pause, deadline - workflow.now()))
            pause = min(pause * 2, timedelta(minutes=10))
        if self._decision is None:
            self._end_attempt(attempt, Outcome.NO_ANSWER, 0)

    async def _follow_elevenlabs_status(self, attempt: Attempt, conversation_id: str) -> None:
        """When no webhook has ended the attempt by the ring timeout, the conversation's status on
        the ElevenLabs API tells how it stands: nobody answered (still "initiated", "failed", or no
        conversation at all) ends it at once, so its slot is free within the ring timeout; a call
        that is on ("in-progress", "processing") is asked about again with growing pauses until
        it is done, for at most its longest time plus the post-call timeout. An API that cannot
        be asked is asked again: the call may be live."""
        handling = self._handling
        if self._decision is None:
            await self._wait(
                lambda: self._decision is not None, timedelta(seconds=handling.ring_timeout_seconds)
            )
        deadline = workflow.now() + timedelta(
            seconds=handling.max_call_seconds + handling.postcall_timeout_seconds
        )
        pause = _STATUS_FIRST_PAUSE
        while self._decision is None:
            found = await self._conversation_status(conversation_id)
            if self._decision is not None:
                break
            if found is not None and found.info is not None:
                self._end_from_conversation(attempt, found.info)
                break
            if found is not None and found.status in ("in-progress", "processing"):
                if attempt.answered_at is None:
                    attempt.answered_at = workflow.now()
                    await self._set(CallStatus.IN_PROGRESS)
            elif found is not None:
                # Still ringing past the ring timeout, no conversation, or one ElevenLabs says failed.
                if attempt.answered_at is not None:
                    outcome = Outcome.SHORT  # it was on the line, and ended with no conversation
                elif found.status == "initiated":
                    outcome = Outcome.RING_TIMEOUT
                else:
                    outcome = Outcome.NO_ANSWER
                self._end_attempt(attempt, outcome, 0)
                break
            if workflow.now() >= deadline:
                break
            await self._wait(lambda: self._decision is not None, min(pause, deadline - workflow.now()))
            pause = min(pause * 2, _STATUS_LONGEST_PAUSE)
        if self._decision is None:
            self._end_attempt(attempt, Outcome.NO_ANSWER, 0)

    def _end_from_conversation(self, attempt: Attempt, info: PostcallInfo) -> None:
        """End the attempt from a conversation read from the ElevenLabs API once it was done."""
        answered = (info.duration_seconds or 0) > 0
        attempt.answered_at = attempt.answered_at or (attempt.started_at if answered else None)
        outcome = classify_end(
            duration=info.duration_seconds, answered=answered, provider_status=None, handling=self._handling
        )
        self._end_attempt(attempt, outcome, info.duration_seconds)
        if outcome is Outcome.ANSWERED:
            self._state.postcall = info

    async def _conversation_status(self, conversation_id: str) -> ConversationStatus | None:
        """The conversation's status on the ElevenLabs API; None when the API could not be asked."""
        status: ConversationStatus | None = await self._ask_elevenlabs(
            CallActivities.conversation_status, conversation_id
        )
        return status

    async def _conversation(self, conversation_id: str) -> PostcallInfo | None:
        """The conversation from the ElevenLabs API once it is done; None before, or when the API fails."""
        info: PostcallInfo | None = await self._ask_elevenlabs(
            CallActivities.fetch_conversation, conversation_id
        )
        return info

    async def _ask_elevenlabs(self, activity: Any, conversation_id: str) -> Any:
        """One of the ElevenLabs conversation activities, tried three times; None when it failed."""
        try:
            return await workflow.execute_activity_method(
                activity,
                ConversationRequest(
                    integration=self._request.integration,
                    call_id=self._request.call_id,
                    conversation_id=conversation_id,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            return None

    def _end_attempt(self, attempt: Attempt, outcome: Outcome, duration: float | None) -> None:
        attempt.outcome = outcome
        attempt.duration_seconds = duration
        attempt.ended_at = workflow.now()
        self._decision = after_attempt(
            self._handling,
            attempt=attempt.number,
            outcome=outcome,
            now=workflow.now(),
            cancelled=self._state.cancel_requested,
        )

    async def _lookup(self, again: bool = False) -> None:
        """The integration's CRM lookup, once per call; a failing lookup leaves the call without variables.

        `again` is the second try after an answered call whose lookup failed (the CRM was down at
        dial time): only the record it finds is taken, so the outcome still reaches the lead.
        """
        self._looked_up = True
        self._lookup_failed = False
        flow = registry.integration(self._request.integration).call_flow
        if flow is None or flow.lookup is None:
            return
        payload = LookupPayload(
            call_id=self._request.call_id,
            phone_number=self._request.phone_number,
            metadata=self._request.metadata,
        )
        try:
            result = await self._child(
                flow.lookup, payload.model_dump(mode="json"), key="-again" if again else ""
            )
        except ChildWorkflowError as exc:
            self._lookup_failed = True
            self._state.reason = f"lookup failed: {error_from_failure(exc.cause).message}"
            return
        found = LookupResult.model_validate(result)
        if not again:
            self._state.variables = dict(found.variables)
        self._state.record_id = found.record_id

    # The slot ---------------------------------------------------------------------------------

    async def _acquire(self) -> bool:
        number = self._state.attempt + 1
        me = workflow.info().workflow_id
        await self._signal_queue(CallQueue.acquire, SlotRequest(holder=me, attempt=number))
        await workflow.wait_condition(lambda: self._granted == number or self._state.cancel_requested)
        if self._granted != number:
            # Cancelled while waiting: leave the queue (or give back a grant crossing on the way).
            await self._signal_queue(CallQueue.release, SlotRelease(holder=me, attempt=number))
            return False
        self._holding = number
        return True

    async def _release(self) -> None:
        # A run evicted from the worker's cache is torn down outside the workflow's event loop,
        # and its `finally` blocks still come here: there is nothing to send then (the run goes on
        # from its history on its next task).
        if self._holding is None or not workflow.in_workflow():
            return
        number, self._holding = self._holding, None
        await self._signal_queue(
            CallQueue.release, SlotRelease(holder=workflow.info().workflow_id, attempt=number)
        )

    async def _signal_queue(self, signal: Any, arg: Any) -> None:
        queue = workflow.get_external_workflow_handle(queue_workflow_id(self._request.integration))
        try:
            await queue.signal(signal, arg)
        except FailureError:
            # Not running yet (the integration's first call) or stopped by an operator: start it.
            await workflow.execute_activity_method(
                CallActivities.start_queue,
                QueueRef(integration=self._request.integration),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_STORE,
            )
            await queue.signal(signal, arg)

    @workflow.signal(name=SLOT_GRANTED)
    def slot_granted(self, grant: SlotGrant) -> None:
        self._granted = grant.attempt

    # After the call ---------------------------------------------------------------------------

    async def _after_the_call(self) -> None:
        if not await self._wait(
            lambda: self._state.postcall is not None,
            timedelta(seconds=self._handling.postcall_timeout_seconds),
        ):
            await self._recover_postcall()
        if self._state.postcall is None:
            await self._finish(CallStatus.FAILED, "postcall_missing")
            return
        await self._set(CallStatus.ANALYZING)
        self._state.analysis = await self._analyze(self._state.postcall)
        flow = registry.integration(self._request.integration).call_flow
        if self._lookup_failed and workflow.patched("lookup-again-before-postcall"):
            await self._lookup(again=True)
        if flow is not None and flow.postcall is not None:
            try:
                self._state.result = await self._child(
                    flow.postcall, self._postcall_payload().model_dump(mode="json")
                )
            except ChildWorkflowError as exc:
                await self._finish(
                    CallStatus.FAILED, f"postcall failed: {error_from_failure(exc.cause).message}"
                )
                return
        callback_at = self._state.analysis.callback_at
        if self._state.analysis.outcome == "callback" and callback_at is not None:
            self._state.callback_call_id = f"c_{workflow.uuid4().hex[:20]}"
        await self._finish(CallStatus.COMPLETED, None)
        if self._state.callback_call_id is not None:
            # After the call is completed: its number is free for the call it asked for.
            await workflow.execute_activity_method(
                CallActivities.schedule_callback,
                CallRequest(
                    integration=self._request.integration,
                    call_id=self._state.callback_call_id,
                    phone_number=self._request.phone_number,
                    metadata=self._request.metadata,
                    not_before=callback_at,
                    previous_call_id=self._request.call_id,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_STORE,
            )

    async def _analyze(self, info: PostcallInfo) -> CallAnalysis:
        """The analysis model's verdict; ElevenLabs' own when the model cannot be had: the call
        never fails for the model's sake."""
        try:
            return await workflow.execute_activity_method(
                AnalysisActivities.analyze,
                AnalysisRequest(
                    integration=self._request.integration, call_id=self._request.call_id, info=info
                ),
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5)),
            )
        except ActivityError:
            return from_elevenlabs(info)

    async def _recover_postcall(self) -> None:
        """ElevenLabs does not retry a post-call webhook by default: read the conversation from its
        API, with growing pauses, for up to a day, while still taking the webhook if it comes."""
        deadline = workflow.now() + _RECOVERY_WINDOW
        pause = _RECOVERY_FIRST_PAUSE
        while self._state.postcall is None and workflow.now() < deadline:
            conversation = self._answered_attempt().conversation_id or self._state.conversation_id
            if conversation:
                # The API down or refusing us is no answer yet: the webhook may still come.
                info = await self._conversation(conversation)
                if info is not None and self._state.postcall is None:
                    self._state.postcall = info
                    return
            await self._wait(lambda: self._state.postcall is not None, min(pause, deadline - workflow.now()))
            pause = min(pause * 2, _RECOVERY_LONGEST_PAUSE)

    def _postcall_payload(self) -> PostcallPayload:
        attempt = self._answered_attempt()
        info = self._state.postcall or PostcallInfo()
        return PostcallPayload(
            call_id=self._request.call_id,
            phone_number=self._request.phone_number,
            attempt=attempt.number,
            record_id=self._state.record_id,
            variables=self._state.variables,
            started_at=attempt.answered_at or attempt.started_at,
            ended_at=attempt.ended_at,
            duration_seconds=info.duration_seconds or attempt.duration_seconds or 0,
            conversation_id=info.conversation_id or attempt.conversation_id,
            transcript_document_id=info.document_id,
            call_successful=info.call_successful,
            transcript_summary=info.transcript_summary,
            data_collection_results=info.data_collection_results,
            analysis=self._state.analysis,
        )

    def _answered_attempt(self) -> Attempt:
        return self._state.attempts[-1]

    # Updates and the query --------------------------------------------------------------------

    @workflow.update
    def call_event(self, event: CallEvent) -> CallEventAnswer:
        attempt = self._attempt
        if event.conversation_id:
            self._state.conversation_id = event.conversation_id
        if (
            attempt is None
            or attempt.outcome is not None
            or (
                event.provider_call_id
                and attempt.provider_call_id
                and event.provider_call_id != attempt.provider_call_id
            )
        ):
            return CallEventAnswer(
                status=self._state.status, message="no attempt of this call is on the line: nothing changed"
            )
        if event.conversation_id:
            attempt.conversation_id = event.conversation_id
        if event.provider_call_id and not attempt.provider_call_id:
            attempt.provider_call_id = event.provider_call_id
        if event.event_type == "call_start":
            if attempt.answered_at is None:
                attempt.answered_at = workflow.now()
            return CallEventAnswer(status=CallStatus.IN_PROGRESS, message="the call is in progress")
        answered = attempt.answered_at is not None
        outcome = classify_end(
            duration=event.duration,
            answered=answered,
            provider_status=event.provider_status,
            handling=self._handling,
        )
        self._end_attempt(attempt, outcome, event.duration if answered else 0)
        return self._decision_answer(outcome)

    @call_event.validator
    def _event_of_this_call(self, event: CallEvent) -> None:
        """Refuse an event whose provider call id is none of this call's attempts' (a forged or
        misrouted event): 409 for the sender, nothing in history, nothing changed. An attempt
        that has not heard its id from originate yet (the event beat the answer) takes it."""
        if not event.provider_call_id:
            return
        known = {a.provider_call_id for a in self._state.attempts if a.provider_call_id}
        attempt = self._attempt
        waiting = attempt is not None and attempt.outcome is None and attempt.provider_call_id is None
        if known and event.provider_call_id not in known and not waiting:
            raise ApplicationError(
                "the event's provider call id is not this call's: refused, nothing changed",
                type="Conflict",
                non_retryable=True,
            )

    @workflow.update
    def postcall(self, event: PostcallEvent) -> PostcallAnswer:
        if event.type == "post_call_audio":
            self._state.audio_document_id = event.audio_document_id
            return PostcallAnswer(status=self._state.status, message="audio stored")
        attempt = self._attempt
        on_the_line = attempt is not None and attempt.outcome is None
        earlier = {a.conversation_id for a in self._state.attempts[:-1] if a.conversation_id}
        if event.info.conversation_id in earlier:
            # A late webhook of an attempt that already ended (and was retried) changes nothing.
            return PostcallAnswer(
                status=self._state.status, message="about an earlier attempt: nothing changed"
            )
        if event.type == "call_initiation_failure":
            if attempt is None or not on_the_line or attempt.answered_at is not None:
                return PostcallAnswer(
                    status=self._state.status, message="no attempt is ringing: nothing changed"
                )
            outcome = provider_outcome(event.failure_reason) or Outcome.NO_ANSWER
            self._end_attempt(attempt, outcome, 0)
            assert self._decision is not None
            return PostcallAnswer(status=self._decision.status, message=f"the attempt ended: {outcome.value}")
        if self._state.postcall is not None:
            return PostcallAnswer(status=self._state.status, message="the post-call was received before")
        if attempt is not None and on_the_line:
            # The transcript came before the call_end (or instead of it): it ends the attempt.
            if attempt.answered_at is None:
                attempt.answered_at = attempt.started_at
            duration = event.info.duration_seconds
            outcome = classify_end(
                duration=duration, answered=True, provider_status=None, handling=self._handling
            )
            self._end_attempt(attempt, outcome, duration)
            if outcome is not Outcome.ANSWERED:
                return PostcallAnswer(status=self._state.status, message="a short call: it will be retried")
        elif not self._state.attempts or self._answered_attempt().outcome is not Outcome.ANSWERED:
            return PostcallAnswer(status=self._state.status, message="no answered attempt: nothing changed")
        self._state.postcall = event.info
        return PostcallAnswer(status=self._state.status, message="post-call received")

    @workflow.update
    def cancel(self) -> CallState:
        if self._state.status not in (CallStatus.COMPLETED, CallStatus.EXHAUSTED, CallStatus.FAILED):
            self._state.cancel_requested = True
        return self._state

    @workflow.query
    def state(self) -> CallState:
        return self._state

    def _decision_answer(self, outcome: Outcome) -> CallEventAnswer:
        decision = self._decision
        assert decision is not None
        messages = {
            "postcall": "the call was answered: waiting for the post-call",
            "retry": f"{outcome.value}: another attempt is scheduled",
            "exhausted": f"{outcome.value}: no attempts are left",
            "cancelled": f"{outcome.value}: the call was cancelled",
        }
        return CallEventAnswer(
            status=decision.status,
            scheduled_retry=decision.kind == "retry",
            next_retry_at=decision.retry_at,
            message=messages[decision.kind],
        )

    # Plumbing ---------------------------------------------------------------------------------

    async def _child(self, handler: str, payload: dict[str, Any], key: str = "") -> dict[str, Any]:
        """Run one of the integration's handlers as a child HandlerRun named after the call (and `key`)."""
        result: HandlerRunResult = await workflow.execute_child_workflow(
            HandlerRun.run,
            HandlerRunInput(integration=self._request.integration, handler=handler, payload=payload),
            id=handler_workflow_id(self._request.integration, handler, self._request.call_id + key),
            static_summary=handler,
        )
        return result.response

    async def _wait(self, condition: Any, within: timedelta) -> bool:
        """True when `condition` came true, False when `within` passed first.

        The timer is left to run out rather than cancelled when the condition wins: a cancelled
        timer is two more history events, and on the time-skipping test server cancelling a timer
        that fired meanwhile strands the run (temporalio/sdk-java#3088). One that fires later
        only wakes the workflow to find nothing to do.
        """
        timer = asyncio.ensure_future(workflow.sleep(max(within, timedelta(seconds=1))))
        await workflow.wait_condition(lambda: bool(condition()) or timer.done())
        return bool(condition())

    async def _sleep_until(self, moment: datetime) -> None:
        """Wait until `moment`, or until a cancel request comes."""
        await self._wait(lambda: self._state.cancel_requested, moment - workflow.now())

    async def _set(self, status: CallStatus, *, next_attempt_at: datetime | None = None) -> None:
        self._metrics.status_changed(self._state.status, status)
        self._state.status = status
        self._state.next_attempt_at = next_attempt_at
        workflow.upsert_search_attributes(
            [CALL_STATUS_KEY.value_set(status.value), CALL_ATTEMPT_KEY.value_set(self._state.attempt)]
        )
        attempt = self._state.attempts[-1] if self._state.attempts else None
        await workflow.execute_local_activity_method(
            CallActivities.record,
            CallRecord(
                integration=self._request.integration,
                call_id=self._request.call_id,
                status=status,
                attempt=self._state.attempt,
                next_attempt_at=next_attempt_at,
                provider_call_id=self._state.provider_call_id,
                conversation_id=self._state.conversation_id,
                outcome=attempt.outcome if attempt else None,
                reason=self._state.reason,
                variables=self._state.variables if self._looked_up else None,
                result=self._state.result,
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=_STORE,
            summary=status.value,
        )

    async def _finish(self, status: CallStatus, reason: str | None) -> None:
        if reason:
            self._state.reason = reason
        await self._set(status)
        self._metrics.ended(status, self._state.attempt)
