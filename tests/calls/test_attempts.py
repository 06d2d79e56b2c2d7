"""What a webhook does to the attempt on the line (`happ_integ.calls.attempts`), without Temporal:
the answers `OutboundCall`'s updates give and the decisions the workflow then carries out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from happ_integ.calls.attempts import (
    apply_call_event,
    apply_postcall,
    end_attempt,
    end_from_conversation,
    event_of_this_call,
)
from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import (
    Attempt,
    CallEvent,
    CallState,
    CallStatus,
    Outcome,
    PostcallEvent,
    PostcallInfo,
)
from happ_integ.calls.rules import Decision

STARTED = datetime(2026, 1, 21, 12, 0, tzinfo=UTC)
NOW = STARTED + timedelta(seconds=50)
HANDLING = CallHandling(calling_hours=None, max_attempts=3, retry_delays_seconds=[600])


def dialing(number: int = 1, provider_call_id: str | None = "va-1") -> tuple[CallState, Attempt]:
    """A call whose attempt `number` is on the line (the earlier ones ended unanswered)."""
    state = CallState(call_id="c_1", integration="sofa", status=CallStatus.DIALING, attempt=number)
    for n in range(1, number):
        state.attempts.append(
            Attempt(
                number=n,
                started_at=STARTED,
                outcome=Outcome.NO_ANSWER,
                provider_call_id=f"va-{n}",
                conversation_id=f"conv-{n}",
            )
        )
    attempt = Attempt(number=number, started_at=STARTED, provider_call_id=provider_call_id)
    state.attempts.append(attempt)
    return state, attempt


def event(kind: str = "call_end", **fields: object) -> CallEvent:
    return CallEvent(event_type=kind, **fields)  # type: ignore[arg-type]


def transcript(duration: float = 45, conversation_id: str = "conv-1") -> PostcallEvent:
    info = PostcallInfo(conversation_id=conversation_id, duration_seconds=duration, document_id="doc-1")
    return PostcallEvent(type="post_call_transcription", info=info)


# call_event ------------------------------------------------------------------------------------


def test_call_start_marks_the_attempt_answered_and_decides_nothing_yet() -> None:
    state, attempt = dialing()
    answer, decision = apply_call_event(
        state, attempt, event("call_start", conversation_id="conv-1"), HANDLING, NOW
    )
    assert answer.status is CallStatus.IN_PROGRESS and decision is None
    assert attempt.answered_at == NOW and attempt.conversation_id == state.conversation_id == "conv-1"
    again, _ = apply_call_event(state, attempt, event("call_start"), HANDLING, NOW + timedelta(seconds=3))
    assert again.status is CallStatus.IN_PROGRESS and attempt.answered_at == NOW  # the first one counts


def test_an_answered_call_end_waits_for_the_postcall() -> None:
    state, attempt = dialing()
    attempt.answered_at = STARTED
    answer, decision = apply_call_event(state, attempt, event(duration=45), HANDLING, NOW)
    assert decision == Decision("postcall")
    assert answer.status is CallStatus.WAITING_POSTCALL and not answer.scheduled_retry
    assert answer.message == "the call was answered: waiting for the post-call"
    assert (attempt.outcome, attempt.duration_seconds, attempt.ended_at) == (Outcome.ANSWERED, 45, NOW)


def test_a_short_call_is_retried_and_the_answer_says_when() -> None:
    state, attempt = dialing()
    attempt.answered_at = STARTED
    answer, decision = apply_call_event(state, attempt, event(duration=2), HANDLING, NOW)
    assert decision == Decision("retry", NOW + timedelta(seconds=600))
    assert answer.scheduled_retry and answer.next_retry_at == NOW + timedelta(seconds=600)
    assert answer.status is CallStatus.SCHEDULED and answer.message == "short: another attempt is scheduled"
    assert attempt.outcome is Outcome.SHORT and attempt.duration_seconds == 2


def test_a_call_end_without_a_call_start_counts_zero_seconds_and_the_providers_status() -> None:
    state, attempt = dialing()
    _, decision = apply_call_event(state, attempt, event(duration=30, provider_status="busy"), HANDLING, NOW)
    assert attempt.outcome is Outcome.BUSY and attempt.duration_seconds == 0
    assert decision is not None and decision.kind == "retry"


def test_the_last_attempts_end_exhausts_the_call() -> None:
    state, attempt = dialing(number=3, provider_call_id="va-3")
    answer, decision = apply_call_event(state, attempt, event(provider_status="no_answer"), HANDLING, NOW)
    assert decision == Decision("exhausted") and answer.status is CallStatus.EXHAUSTED
    assert answer.message == "no_answer: no attempts are left" and not answer.scheduled_retry


def test_an_unanswered_end_after_a_cancel_ends_the_call() -> None:
    state, attempt = dialing()
    state.cancel_requested = True
    answer, decision = apply_call_event(state, attempt, event(duration=0), HANDLING, NOW)
    assert decision == Decision("cancelled") and answer.status is CallStatus.CANCELLED
    assert answer.message == "short: the call was cancelled"


def test_an_event_for_no_attempt_on_the_line_changes_nothing_but_the_conversation_id() -> None:
    state, attempt = dialing()
    state.status = CallStatus.SCHEDULED
    attempt.outcome = Outcome.SHORT
    for current in (None, attempt):  # between attempts, or the attempt already ended
        answer, decision = apply_call_event(
            state, current, event(duration=50, conversation_id="conv-late"), HANDLING, NOW
        )
        assert decision is None and answer.status is CallStatus.SCHEDULED
        assert answer.message == "no attempt of this call is on the line: nothing changed"
    assert attempt.outcome is Outcome.SHORT and attempt.conversation_id is None
    assert state.conversation_id == "conv-late"


def test_an_event_with_another_attempts_provider_call_id_changes_nothing() -> None:
    state, attempt = dialing(number=2, provider_call_id="va-2")
    answer, decision = apply_call_event(
        state, attempt, event(duration=50, provider_call_id="va-1"), HANDLING, NOW
    )
    assert decision is None and "nothing changed" in answer.message and attempt.outcome is None


def test_an_attempt_that_has_not_heard_its_provider_call_id_takes_the_events() -> None:
    state, attempt = dialing(provider_call_id=None)
    apply_call_event(state, attempt, event("call_start", provider_call_id="va-early"), HANDLING, NOW)
    assert attempt.provider_call_id == "va-early"


def test_the_validator_refuses_only_a_provider_call_id_none_of_the_attempts_had() -> None:
    state, attempt = dialing(number=2, provider_call_id="va-2")
    assert event_of_this_call(state, attempt, event())  # no id: judged as it is
    assert event_of_this_call(state, attempt, event(provider_call_id="va-2"))
    assert event_of_this_call(state, None, event(provider_call_id="va-1"))  # an earlier attempt's
    assert not event_of_this_call(state, attempt, event(provider_call_id="va-forged"))
    # The attempt on the line has no id yet (the event beat originate's answer): it may be its own.
    waiting_state, waiting = dialing(number=2, provider_call_id=None)
    assert event_of_this_call(waiting_state, waiting, event(provider_call_id="va-new"))
    # No attempt has an id at all: nothing to compare with.
    fresh_state, fresh = dialing(provider_call_id=None)
    fresh.outcome = Outcome.SHORT
    assert event_of_this_call(fresh_state, fresh, event(provider_call_id="anything"))


# postcall --------------------------------------------------------------------------------------


def test_a_transcript_after_an_answered_call_is_its_postcall() -> None:
    state, attempt = dialing()
    attempt.answered_at = STARTED
    end_attempt(state, attempt, Outcome.ANSWERED, 45, HANDLING, NOW)
    state.status = CallStatus.WAITING_POSTCALL
    answer, decision = apply_postcall(state, None, transcript(), HANDLING, NOW)
    assert decision is None and answer.message == "post-call received"
    assert state.postcall is not None and state.postcall.document_id == "doc-1"
    second, _ = apply_postcall(state, None, transcript(), HANDLING, NOW)
    assert second.message == "the post-call was received before"


def test_a_transcript_before_the_call_end_ends_the_attempt_as_answered() -> None:
    state, attempt = dialing()
    answer, decision = apply_postcall(state, attempt, transcript(45), HANDLING, NOW)
    assert decision == Decision("postcall") and answer.message == "post-call received"
    assert attempt.outcome is Outcome.ANSWERED and attempt.answered_at == STARTED
    assert attempt.duration_seconds == 45 and state.postcall is not None


def test_a_short_transcript_ends_the_attempt_for_a_retry_and_is_not_the_postcall() -> None:
    state, attempt = dialing()
    answer, decision = apply_postcall(state, attempt, transcript(2), HANDLING, NOW)
    assert decision is not None and decision.kind == "retry"
    assert answer.message == "a short call: it will be retried" and state.postcall is None


def test_a_transcript_with_no_answered_attempt_changes_nothing() -> None:
    state, attempt = dialing()
    attempt.outcome = Outcome.NO_ANSWER
    answer, decision = apply_postcall(state, None, transcript(), HANDLING, NOW)
    assert decision is None and answer.message == "no answered attempt: nothing changed"
    empty = CallState(call_id="c_2", integration="sofa")
    assert apply_postcall(empty, None, transcript(), HANDLING, NOW)[0].message.startswith("no answered")


def test_a_late_webhook_of_an_earlier_attempt_changes_nothing() -> None:
    state, attempt = dialing(number=2, provider_call_id="va-2")
    answer, decision = apply_postcall(state, attempt, transcript(45, "conv-1"), HANDLING, NOW)
    assert decision is None and answer.message == "about an earlier attempt: nothing changed"
    assert attempt.outcome is None and state.postcall is None


def test_an_initiation_failure_ends_the_ringing_attempt_as_the_provider_says() -> None:
    state, attempt = dialing()
    failure = PostcallEvent(type="call_initiation_failure", failure_reason="busy")
    answer, decision = apply_postcall(state, attempt, failure, HANDLING, NOW)
    assert decision is not None and decision.kind == "retry"
    assert answer.status is CallStatus.SCHEDULED and answer.message == "the attempt ended: busy"
    assert attempt.outcome is Outcome.BUSY and attempt.duration_seconds == 0
    unknown = PostcallEvent(type="call_initiation_failure", failure_reason="sip 486?")
    state2, attempt2 = dialing()
    apply_postcall(state2, attempt2, unknown, HANDLING, NOW)
    assert attempt2.outcome is Outcome.NO_ANSWER


def test_an_initiation_failure_for_an_answered_or_ended_attempt_changes_nothing() -> None:
    failure = PostcallEvent(type="call_initiation_failure", failure_reason="busy")
    state, attempt = dialing()
    attempt.answered_at = STARTED
    answer, decision = apply_postcall(state, attempt, failure, HANDLING, NOW)
    assert decision is None and answer.message == "no attempt is ringing: nothing changed"
    assert apply_postcall(state, None, failure, HANDLING, NOW)[1] is None


def test_the_audio_is_only_noted() -> None:
    state, attempt = dialing()
    audio = PostcallEvent(type="post_call_audio", audio_document_id="audio-1")
    answer, decision = apply_postcall(state, attempt, audio, HANDLING, NOW)
    assert decision is None and answer.message == "audio stored" and state.audio_document_id == "audio-1"
    assert attempt.outcome is None


# A conversation read from the ElevenLabs API ----------------------------------------------------


def test_a_conversation_with_a_duration_was_answered_and_is_the_postcall() -> None:
    state, attempt = dialing()
    info = PostcallInfo(conversation_id="conv-el-1", duration_seconds=42, source="api")
    decision = end_from_conversation(state, attempt, info, HANDLING, NOW)
    assert decision == Decision("postcall") and state.postcall == info
    assert attempt.answered_at == STARTED and attempt.outcome is Outcome.ANSWERED


def test_a_conversation_without_a_duration_was_not_answered() -> None:
    state, attempt = dialing()
    decision = end_from_conversation(state, attempt, PostcallInfo(duration_seconds=0), HANDLING, NOW)
    assert decision.kind == "retry" and attempt.answered_at is None and attempt.outcome is Outcome.SHORT
    assert state.postcall is None
