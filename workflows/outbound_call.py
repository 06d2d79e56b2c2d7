"""`OutboundCall`: one outbound call, from its first attempt to the CRM update.

Workflow id `{integration}:call:{call_id}`; search attributes `Integration`, `CallStatus`,
`CallAttempt`; the memo holds the number masked. For each attempt the call waits for the calling
window (holding no slot), takes a slot from the integration's `CallQueue`, dials through the voice
assistant and follows the call events; an attempt that was short, unanswered, busy or timed out
is retried after the configured delay until `max_attempts`. An answered call then waits for the
post-call webhook (reading the conversation from ElevenLabs when it does not come) and runs the
integration's postcall handler. Every status change is written to `{integration}_calls`.

Updates `call_event`, `postcall` and `cancel` answer with the workflow's own decision
(`happ_integ.calls.attempts`); the query `state` returns the whole `CallState`. This module is
the story; beside it: `slots` (a slot of the `CallQueue` around each attempt), `call_steps` (the
dial, the CRM handlers, the analysis), `conversation` (the ElevenLabs API when no webhook comes),
`call_record` (status writes), `timers` (named timers that end with their wait).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities, registered_handlers
    from happ_integ.calls import attempts
    from happ_integ.calls.clock import next_window_start, next_window_start_in, zones_for
    from happ_integ.calls.config import RECIPIENT, CallHandling
    from happ_integ.calls.contracts import CallFlowHandlers, CallRequest, DialCheck, DialPermit, SlotPriority
    from happ_integ.calls.models import (
        FINAL_STATUSES,
        Attempt,
        CallEvent,
        CallEventAnswer,
        CallState,
        CallStatus,
        Outcome,
        PostcallAnswer,
        PostcallEvent,
    )
    from happ_integ.calls.payloads import postcall_payload
    from happ_integ.calls.phones import mask_phone
    from happ_integ.calls.rules import Decision, after_analysis
    from happ_integ.calls.zones import is_zone
    from happ_integ.durable import error_from_failure
    from happ_integ.errors import RetryableError

from workflows import timers
from workflows.call_record import STORE, CallRecorder
from workflows.call_steps import CallSteps
from workflows.conversation import Conversations
from workflows.slots import Slots

# A `timezone` variable from the CRM lookup re-reads the calling window in that zone.
ZONE_FROM_LOOKUP_PATCH = "calling-window-in-the-crm-zone"
# Each dial is preceded by `call.may_dial` (the do-not-call list, then contact_policy's caps); runs
# from before dial as they did.
DIAL_CHECK_PATCH = "dial-checked-against-do-not-call"
# An answered call whose analysis says it reached a voicemail is dialled again when
# `retry_delays_seconds` names "voicemail"; runs from before complete as they did.
VOICEMAIL_RETRY_PATCH = "voicemail-retried-after-the-analysis"
# A call held back by a contact cap waits, and shows it waits, for the first moment that both the
# cap and its calling window allow; runs from before waited for the cap, then for the window.
CAP_WAITS_FOR_THE_WINDOW_PATCH = "contact-cap-waits-for-the-window"


# The framework's own code, no integration's: it runs outside the sandbox, which would rebuild this
# module for every run and wrap every payload it converts, work repeated on every workflow task of
# every call for code that needs no isolation. Its determinism is held by the replay tests over
# recorded histories (tests/workflows/test_call_replay.py).
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
            campaign_id=request.campaign_id,
            recipient_id=request.recipient_id,
            metadata=request.metadata,
            variables=dict(request.variables),
        )
        self._handling = CallHandling()
        self._steps = CallSteps(request, CallFlowHandlers())  # with the handlers call.begin names
        self._attempt: Attempt | None = None  # the attempt dialing or talking
        self._decision: Decision | None = None  # what its end decided
        self._cap_reason: str | None = None  # the contact cap the call waits for, if any
        self._lookup_failed = False
        self._record = CallRecorder(request, self._state)
        self._slots = Slots(request.integration)
        self._conversations = Conversations(request.integration, request.call_id)

    @workflow.run
    async def run(self, request: CallRequest) -> CallState:
        self._record.started()
        begin = await workflow.execute_local_activity_method(
            CallActivities.begin, request, start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE
        )
        # A campaign's calling hours, attempts and retry delays replace the integration's.
        self._handling = begin.handling.with_overrides(request.handling_overrides)
        self._zones = begin.zones
        if begin.zones is not None:
            self._state.timezones = list(begin.zones.zones)
        # Histories recorded before call.begin returned the handlers read them from the registry.
        self._steps = CallSteps(request, begin.call_flow or registered_handlers(request.integration))
        # An answered attempt is followed by its post-call; one that reached a voicemail may be
        # dialled again (`_voicemail_retry`), and then the attempts go on.
        while await self._attempts():
            if not await self._after_the_call():
                break
        return self._state

    # Attempts ---------------------------------------------------------------------------------

    async def _attempts(self) -> bool:
        """Dial until an attempt is answered (True), or the call ends without one (False)."""
        while True:
            if self._state.cancel_requested:
                await self._record.finish(CallStatus.CANCELLED, "cancelled before it was answered")
                return False
            earliest = max(workflow.now(), self._request.not_before or workflow.now())
            opens = self._window_opens(earliest)
            if opens is None:
                await self._record.finish(CallStatus.FAILED, "its calling hours never open in its time zones")
                return False
            if opens > workflow.now():
                await self._record.status(CallStatus.SCHEDULED, next_attempt_at=opens)
                await self._sleep_until(opens, "calling window")
                continue
            if not self._record.looked_up:
                await self._lookup()
                if self._zone_from_lookup():
                    continue  # the window is read again, in the zone the CRM gave for the callee
            await self._record.status(CallStatus.QUEUED)
            slot = self._slots.hold(
                self._state.attempt + 1,
                unless=lambda: self._state.cancel_requested,
                priority=self._priority(),
                campaign_id=self._request.campaign_id,
                share=self._request.max_concurrency,
            )
            async with slot as held:
                if not held:
                    continue
                permit = await self._may_dial()
                if permit.allowed and self._cap_reason is not None:
                    # The cap that held the call back no longer does: it is not why it ends.
                    if self._state.reason == self._cap_reason:
                        self._state.reason = None
                    self._cap_reason = None
                decision = await self._dial() if permit.allowed else None
            if permit.suppressed:
                # The number went on the do-not-call list: the call ends without a dial.
                await self._record.finish(CallStatus.SUPPRESSED, permit.reason)
                return False
            if not permit.allowed and permit.next_allowed_at is not None:
                # A contact_policy cap holds the number back: no attempt is spent, the call waits
                # (holding no slot) for the first moment the cap allows, then for its window.
                self._state.reason = self._cap_reason = permit.reason
                until = permit.next_allowed_at
                if workflow.patched(CAP_WAITS_FOR_THE_WINDOW_PATCH):
                    until = self._window_opens(until) or until
                await self._record.status(CallStatus.SCHEDULED, next_attempt_at=until, held_by_cap=True)
                await self._sleep_until(until, "contact cap")
                continue
            if decision is None:
                return False
            if decision.kind == "postcall":
                await self._record.status(CallStatus.WAITING_POSTCALL)
                return True
            if decision.kind == "exhausted":
                reason = f"no answered call in {self._state.attempt} attempts"
                await self._record.finish(
                    CallStatus.EXHAUSTED, f"{reason} ({decision.reason})" if decision.reason else reason
                )
                return False
            if decision.kind == "cancelled":
                await self._record.finish(CallStatus.CANCELLED, "cancelled: no further attempt")
                return False
            await self._wait_to_retry(decision, self._state.attempts[-1].outcome)

    def _window_opens(self, earliest: datetime) -> datetime | None:
        """The calling window's next opening at or after `earliest`: in the zones call.begin named
        (the callee's own, for calling_hours.timezone "recipient"), else in calling_hours.timezone
        (runs recorded before call.begin named them). None when it never opens."""
        if self._zones is None:
            return next_window_start(earliest, self._handling.calling_hours)
        try:
            return next_window_start_in(earliest, self._handling.calling_hours, self._zones)
        except ValueError:
            return None

    def _zone_from_lookup(self) -> bool:
        """With `calling_hours.timezone: "recipient"`, a `timezone` variable the CRM lookup found
        (a CRM field mapped to it) is the callee's own zone and wins over the number's: True when
        it changed the zones. Runs recorded before this read the window as they did."""
        hours = self._handling.calling_hours
        given = self._state.variables.get("timezone")
        if (
            self._zones is None
            or hours is None
            or hours.timezone != RECIPIENT
            or not isinstance(given, str)
            or not is_zone(given)
            or self._zones.zones == [given]
            or not workflow.patched(ZONE_FROM_LOOKUP_PATCH)
        ):
            return False
        self._zones = zones_for(hours, self._request.phone_number, given)
        self._state.timezones = list(self._zones.zones)
        return True

    async def _may_dial(self) -> DialPermit:
        """Right before each dial, with the slot held: the number may not be on the do-not-call
        list. Runs recorded before this check dial as they did."""
        if not workflow.patched(DIAL_CHECK_PATCH):
            return DialPermit()
        request = self._request
        return await workflow.execute_local_activity_method(
            CallActivities.may_dial,
            DialCheck(
                integration=request.integration,
                call_id=request.call_id,
                phone_number=request.phone_number,
                attempt=self._state.attempt + 1,
            ),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=STORE,
            summary=f"may attempt {self._state.attempt + 1} dial?",
        )

    def _priority(self) -> SlotPriority:
        """Retries before a campaign's fresh recipients; a call a person asked for before both."""
        if self._state.attempt > 0:
            return SlotPriority.RETRY
        return SlotPriority.CAMPAIGN if self._request.campaign_id else SlotPriority.PERSON

    async def _dial(self) -> Decision | None:
        """One attempt, from originate to its end; None when the call failed for good."""
        self._state.attempt += 1
        # After a voicemail the call is dialled again: the post-call it waits for is the new one's.
        self._state.postcall = None
        attempt = Attempt(number=self._state.attempt, started_at=workflow.now())
        self._state.attempts.append(attempt)
        self._attempt, self._decision = attempt, None
        await self._record.status(CallStatus.DIALING)
        variables = {**self._state.variables, "call_id": self._request.call_id}
        try:
            originated = await self._steps.originate(attempt.number, variables, self._handling)
        except ActivityError as exc:
            error = error_from_failure(exc.cause)
            attempt.error = error.message
            if not isinstance(error, RetryableError):
                # The voice assistant refused the call (4xx, or no credentials): retrying cannot help.
                self._attempt = None
                await self._record.finish(CallStatus.FAILED, f"originate refused: {error.message}")
                return None
            self._end(attempt, Outcome.ORIGINATE_FAILED, 0)
        else:
            attempt.provider_call_id = attempt.provider_call_id or originated.provider_call_id
            self._state.provider_call_id = attempt.provider_call_id
            if originated.conversation_id:
                attempt.conversation_id = self._state.conversation_id = originated.conversation_id
        if self._handling.provider == "happ_voice":
            await self._follow_call_events(attempt)
        else:
            await self._follow_elevenlabs_call(attempt)
        self._attempt = None
        assert self._decision is not None
        return self._decision

    async def _follow_call_events(self, attempt: Attempt) -> None:
        """The voice assistant's call events end the attempt; its timers end it when they do not."""
        handling = self._handling
        if self._decision is None and attempt.answered_at is None:
            if not await timers.wait(
                lambda: attempt.answered_at is not None or self._decision is not None,
                timedelta(seconds=handling.ring_timeout_seconds),
                "ring timeout",
            ):
                self._end(attempt, Outcome.RING_TIMEOUT, 0)
        if attempt.answered_at is not None and attempt.outcome in (None, Outcome.ANSWERED):
            await self._record.status(CallStatus.IN_PROGRESS)
            if self._decision is None and not await timers.wait(
                lambda: self._decision is not None,
                timedelta(seconds=handling.max_call_seconds),
                "longest call",
            ):
                # The call_end never came: the call ran its longest, so it was answered.
                self._end(attempt, Outcome.ANSWERED, handling.max_call_seconds)

    async def _follow_elevenlabs_call(self, attempt: Attempt) -> None:
        """ElevenLabs' post-call webhooks end the attempt; what its API says ends it when they do not."""
        found = await self._conversations.follow_attempt(
            attempt,
            self._handling,
            ended=lambda: self._decision is not None,
            on_the_line=lambda: self._record.status(CallStatus.IN_PROGRESS),
        )
        if self._decision is not None:
            return
        if found is not None and found.info is not None:
            now = workflow.now()
            self._decision = attempts.end_from_conversation(
                self._state, attempt, found.info, self._handling, now
            )
        else:
            self._end(attempt, (found.outcome if found else None) or Outcome.NO_ANSWER, 0)

    def _end(self, attempt: Attempt, outcome: Outcome, duration: float | None) -> None:
        self._decision = attempts.end_attempt(
            self._state, attempt, outcome, duration, self._handling, workflow.now()
        )

    async def _sleep_until(self, moment: datetime, summary: str) -> None:
        """Wait until `moment`, or until a cancel request comes."""
        await timers.wait(lambda: self._state.cancel_requested, moment - workflow.now(), summary)

    # The lookup -------------------------------------------------------------------------------

    async def _lookup(self, again: bool = False) -> None:
        """The integration's CRM lookup, once per call; a failing lookup leaves the call without variables.

        `again` is the second try after an answered call whose lookup failed (the CRM was down at
        dial time): only the record it finds is taken, so the outcome still reaches the lead.
        """
        self._record.looked_up = True
        self._lookup_failed = False
        try:
            found = await self._steps.lookup(again=again)
        except ChildWorkflowError as exc:
            self._lookup_failed = True
            self._state.reason = f"lookup failed: {error_from_failure(exc.cause).message}"
            return
        if found is not None:
            if not again:
                # The recipient's own variables win; the lookup fills in what they did not give.
                self._state.variables = {**found.variables, **self._request.variables}
            self._state.record_id = found.record_id

    # After the call ---------------------------------------------------------------------------

    async def _after_the_call(self) -> bool:
        """The answered call's post-call, analysis and CRM update; True when it reached a
        voicemail and is to be dialled again instead (the CRM is written once, for the call's end)."""
        if not await timers.wait(
            lambda: self._state.postcall is not None,
            timedelta(seconds=self._handling.postcall_timeout_seconds),
            "post-call timeout",
        ):
            info = await self._conversations.recover_postcall(
                conversation_id=lambda: (
                    self._state.attempts[-1].conversation_id or self._state.conversation_id
                ),
                received=lambda: self._state.postcall is not None,
            )
            self._state.postcall = self._state.postcall or info
        if self._state.postcall is None:
            await self._record.finish(CallStatus.FAILED, "postcall_missing")
            return False
        await self._record.status(CallStatus.ANALYZING)
        self._state.analysis = await self._steps.analyze(self._state.postcall)
        if await self._voicemail_retry():
            return True
        if self._lookup_failed and workflow.patched("lookup-again-before-postcall"):
            await self._lookup(again=True)
        try:
            self._state.result = await self._steps.postcall(postcall_payload(self._request, self._state))
        except ChildWorkflowError as exc:
            reason = f"postcall failed: {error_from_failure(exc.cause).message}"
            await self._record.finish(CallStatus.FAILED, reason)
            return False
        callback_at = self._state.analysis.callback_at
        if self._state.analysis.outcome == "callback" and callback_at is not None:
            self._state.callback_call_id = f"c_{workflow.uuid4().hex[:20]}"
        await self._record.finish(CallStatus.COMPLETED, None)
        if self._state.callback_call_id is not None:
            # After the call is completed: its number is free for the call it asked for.
            await self._steps.schedule_callback(self._state.callback_call_id, callback_at)
        return False

    async def _voicemail_retry(self) -> bool:
        """When the analysis says the answered attempt reached a voicemail and the
        `retry_delays_seconds.voicemail` rule leaves an attempt: the attempt is recorded as
        retried (its reason names the rule), the call waits `scheduled` for the rule's delay, and
        True (the attempts go on; no CRM write for a voicemail that will be called again)."""
        analysis = self._state.analysis
        if analysis is None:
            return False
        decision = after_analysis(
            self._handling,
            attempt=self._state.attempt,
            analysis_outcome=analysis.outcome,
            now=workflow.now(),
            cancelled=self._state.cancel_requested,
        )
        if decision is None or decision.retry_at is None or not workflow.patched(VOICEMAIL_RETRY_PATCH):
            return False
        await self._wait_to_retry(decision, "voicemail")
        return True

    async def _wait_to_retry(self, decision: Decision, outcome: Outcome | str | None) -> None:
        """A retry rule decided: the last attempt notes which rule applied, and the call waits
        `scheduled` until the rule's moment (or a cancel request)."""
        assert decision.retry_at is not None
        self._state.attempts[-1].reason = decision.reason or None
        self._record.retried(outcome)
        await self._record.status(CallStatus.SCHEDULED, next_attempt_at=decision.retry_at)
        await self._sleep_until(decision.retry_at, "retry delay")

    # Updates and the query --------------------------------------------------------------------

    @workflow.update
    def call_event(self, event: CallEvent) -> CallEventAnswer:
        answer, decided = attempts.apply_call_event(
            self._state, self._attempt, event, self._handling, workflow.now()
        )
        self._decision = decided or self._decision
        return answer

    @call_event.validator
    def _event_of_this_call(self, event: CallEvent) -> None:
        """A forged or misrouted event (another call's provider call id) is refused: 409 for the
        sender, nothing in history, nothing changed."""
        if not attempts.event_of_this_call(self._state, self._attempt, event):
            raise ApplicationError(
                "the event's provider call id is not this call's: refused, nothing changed",
                type="Conflict",
                non_retryable=True,
            )

    @workflow.update
    def postcall(self, event: PostcallEvent) -> PostcallAnswer:
        answer, decided = attempts.apply_postcall(
            self._state, self._attempt, event, self._handling, workflow.now()
        )
        self._decision = decided or self._decision
        return answer

    @workflow.update
    def cancel(self) -> CallState:
        if self._state.status not in FINAL_STATUSES:
            self._state.cancel_requested = True
        return self._state

    @workflow.query
    def state(self) -> CallState:
        return self._state
