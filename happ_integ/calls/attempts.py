"""What a webhook, or a conversation read from ElevenLabs, does to the attempt on the line: the
decisions of `OutboundCall`'s updates, as functions of their arguments.

    answer, decision = apply_call_event(state, attempt, CallEvent(event_type="call_end", duration=2),
                                        handling, now)
    answer.scheduled_retry, decision.kind                   # True, "retry": a short call
    answer, decision = apply_postcall(state, attempt, event, handling, now)
    event_of_this_call(state, attempt, event)               # False: another call's provider call id

`state` is the call's `CallState`, `attempt` the attempt dialing or talking (None between
attempts). Each function changes `state` and `attempt` in place and returns the webhook's answer
and, when the attempt ended, the `Decision` the workflow then carries out (None: it goes on as
it was), so the answer is exactly what the workflow does. No I/O and no clock of their own:
workflow code passes `workflow.now()`.
"""

from __future__ import annotations

from datetime import datetime

from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import (
    Attempt,
    CallEvent,
    CallEventAnswer,
    CallState,
    CallStatus,
    Outcome,
    PostcallAnswer,
    PostcallEvent,
    PostcallInfo,
)
from happ_integ.calls.rules import Decision, after_attempt, classify_end, provider_outcome

_NOT_ON_THE_LINE = "no attempt of this call is on the line: nothing changed"


def end_attempt(
    state: CallState,
    attempt: Attempt,
    outcome: Outcome,
    duration: float | None,
    handling: CallHandling,
    now: datetime,
) -> Decision:
    """End `attempt` as `outcome`; what the call does next (`after_attempt`: the retry rules of
    that outcome, `CallHandling.max_attempts_for` and `retry_delay`; `Decision.reason` names them)."""
    attempt.outcome = outcome
    attempt.duration_seconds = duration
    attempt.ended_at = now
    return after_attempt(
        handling, attempt=attempt.number, outcome=outcome, now=now, cancelled=state.cancel_requested
    )


def event_of_this_call(state: CallState, attempt: Attempt | None, event: CallEvent) -> bool:
    """False for an event whose provider call id is none of this call's attempts' (a forged or
    misrouted event: refused before anything changes). An event without one is judged as it is,
    and an attempt that has not heard its id from originate yet (the event beat the answer) takes
    the event's."""
    if not event.provider_call_id:
        return True
    known = {a.provider_call_id for a in state.attempts if a.provider_call_id}
    waiting = attempt is not None and attempt.outcome is None and attempt.provider_call_id is None
    return not known or event.provider_call_id in known or waiting


def apply_call_event(
    state: CallState, attempt: Attempt | None, event: CallEvent, handling: CallHandling, now: datetime
) -> tuple[CallEventAnswer, Decision | None]:
    """A call-events webhook: `call_start` marks the attempt answered, `call_end` ends it (short,
    answered, or the provider's no_answer / busy / failed). An event for no attempt on the line
    (a redelivery, a late event) changes nothing but the call's conversation id."""
    if event.conversation_id:
        state.conversation_id = event.conversation_id
    if (
        attempt is None
        or attempt.outcome is not None
        or (
            event.provider_call_id
            and attempt.provider_call_id
            and event.provider_call_id != attempt.provider_call_id
        )
    ):
        return CallEventAnswer(status=state.status, message=_NOT_ON_THE_LINE), None
    if event.conversation_id:
        attempt.conversation_id = event.conversation_id
    if event.provider_call_id and not attempt.provider_call_id:
        attempt.provider_call_id = event.provider_call_id
    if event.event_type == "call_start":
        if attempt.answered_at is None:
            attempt.answered_at = now
        return CallEventAnswer(status=CallStatus.IN_PROGRESS, message="the call is in progress"), None
    answered = attempt.answered_at is not None
    outcome = classify_end(
        duration=event.duration, answered=answered, provider_status=event.provider_status, handling=handling
    )
    decision = end_attempt(state, attempt, outcome, event.duration if answered else 0, handling, now)
    return _answer(decision, outcome), decision


def apply_postcall(
    state: CallState, attempt: Attempt | None, event: PostcallEvent, handling: CallHandling, now: datetime
) -> tuple[PostcallAnswer, Decision | None]:
    """An ElevenLabs post-call webhook. The audio is only noted; an initiation failure ends the
    attempt still ringing; a transcript ends the attempt on the line (it can come before its
    call_end, or instead of it: ElevenLabs-dialled calls send no call events) and, for an
    answered call, is the post-call the call waits for. One about an earlier attempt, or a
    second one, changes nothing."""
    if event.type == "post_call_audio":
        state.audio_document_id = event.audio_document_id
        return PostcallAnswer(status=state.status, message="audio stored"), None
    on_the_line = attempt is not None and attempt.outcome is None
    earlier = {a.conversation_id for a in state.attempts[:-1] if a.conversation_id}
    if event.info.conversation_id in earlier:
        # A late webhook of an attempt that already ended (and was retried) changes nothing.
        return PostcallAnswer(status=state.status, message="about an earlier attempt: nothing changed"), None
    if event.type == "call_initiation_failure":
        if attempt is None or not on_the_line or attempt.answered_at is not None:
            return PostcallAnswer(status=state.status, message="no attempt is ringing: nothing changed"), None
        outcome = provider_outcome(event.failure_reason) or Outcome.NO_ANSWER
        ended = end_attempt(state, attempt, outcome, 0, handling, now)
        return PostcallAnswer(status=ended.status, message=f"the attempt ended: {outcome.value}"), ended
    if state.postcall is not None:
        return PostcallAnswer(status=state.status, message="the post-call was received before"), None
    decision: Decision | None = None
    if attempt is not None and on_the_line:
        # The transcript came before the call_end (or instead of it): it ends the attempt.
        if attempt.answered_at is None:
            attempt.answered_at = attempt.started_at
        duration = event.info.duration_seconds
        outcome = classify_end(duration=duration, answered=True, provider_status=None, handling=handling)
        decision = end_attempt(state, attempt, outcome, duration, handling, now)
        if outcome is not Outcome.ANSWERED:
            return PostcallAnswer(status=state.status, message="a short call: it will be retried"), decision
    elif not state.attempts or state.attempts[-1].outcome is not Outcome.ANSWERED:
        return PostcallAnswer(status=state.status, message="no answered attempt: nothing changed"), None
    state.postcall = event.info
    return PostcallAnswer(status=state.status, message="post-call received"), decision


def end_from_conversation(
    state: CallState, attempt: Attempt, info: PostcallInfo, handling: CallHandling, now: datetime
) -> Decision:
    """End the attempt from its conversation read from the ElevenLabs API once it was done: a
    duration means it was answered, and an answered call's conversation is its post-call."""
    answered = (info.duration_seconds or 0) > 0
    attempt.answered_at = attempt.answered_at or (attempt.started_at if answered else None)
    outcome = classify_end(
        duration=info.duration_seconds, answered=answered, provider_status=None, handling=handling
    )
    decision = end_attempt(state, attempt, outcome, info.duration_seconds, handling, now)
    if outcome is Outcome.ANSWERED:
        state.postcall = info
    return decision


_MESSAGES = {
    "postcall": "the call was answered: waiting for the post-call",
    "retry": "{outcome}: another attempt is scheduled",
    "exhausted": "{outcome}: no attempts are left",
    "cancelled": "{outcome}: the call was cancelled",
}


def _answer(decision: Decision, outcome: Outcome) -> CallEventAnswer:
    return CallEventAnswer(
        status=decision.status,
        scheduled_retry=decision.kind == "retry",
        next_retry_at=decision.retry_at,
        message=_MESSAGES[decision.kind].format(outcome=outcome.value),
    )
