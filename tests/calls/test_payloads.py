"""What the integration's call-flow handlers receive (`happ_integ.calls.payloads`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from happ_integ.calls.contracts import CallRequest
from happ_integ.calls.models import Attempt, CallAnalysis, CallState, Outcome, PostcallInfo
from happ_integ.calls.payloads import lookup_payload, postcall_payload

REQUEST = CallRequest(
    integration="sofa", call_id="c_1", phone_number="+380994829573", metadata={"lead": "web"}
)
STARTED = datetime(2026, 1, 21, 12, 0, tzinfo=UTC)


def test_the_lookup_gets_the_number_the_call_id_and_the_metadata() -> None:
    payload = lookup_payload(REQUEST)
    assert (payload.call_id, payload.phone_number, payload.metadata) == (
        "c_1",
        "+380994829573",
        {"lead": "web"},
    )


def test_the_postcall_gets_the_answered_attempt_its_postcall_and_the_analysis() -> None:
    answered = Attempt(
        number=2,
        started_at=STARTED,
        answered_at=STARTED + timedelta(seconds=8),
        ended_at=STARTED + timedelta(seconds=53),
        duration_seconds=45,
        outcome=Outcome.ANSWERED,
        conversation_id="conv-2",
    )
    state = CallState(
        call_id="c_1",
        integration="sofa",
        attempts=[Attempt(number=1, started_at=STARTED, outcome=Outcome.BUSY), answered],
        variables={"client_name": "Іван"},
        record_id="rec-1",
        postcall=PostcallInfo(document_id="doc-2", duration_seconds=44.5, call_successful="success"),
        analysis=CallAnalysis(outcome="interested", summary="Так"),
    )
    payload = postcall_payload(REQUEST, state)
    assert (
        payload.attempt == 2 and payload.record_id == "rec-1" and payload.variables == {"client_name": "Іван"}
    )
    assert payload.started_at == answered.answered_at and payload.ended_at == answered.ended_at
    assert payload.duration_seconds == 44.5  # the post-call's own figure wins
    assert payload.conversation_id == "conv-2"  # the attempt's, when the post-call names none
    assert payload.transcript_document_id == "doc-2" and payload.call_successful == "success"
    assert payload.analysis is not None and payload.analysis.outcome == "interested"


def test_without_a_postcall_the_attempts_figures_are_used() -> None:
    attempt = Attempt(number=1, started_at=STARTED, duration_seconds=30, outcome=Outcome.ANSWERED)
    payload = postcall_payload(REQUEST, CallState(call_id="c_1", integration="sofa", attempts=[attempt]))
    assert payload.started_at == STARTED and payload.duration_seconds == 30
    assert payload.transcript_document_id is None and payload.analysis is None
