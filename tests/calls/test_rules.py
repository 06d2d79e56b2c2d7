"""The retry rules (`happ_integ.calls.rules`): how an attempt ended, and what the call does next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import CallStatus, Outcome
from happ_integ.calls.rules import Decision, after_attempt, classify_end, provider_outcome, status_outcome

NOW = datetime(2026, 1, 21, 12, 0, tzinfo=UTC)
HANDLING = CallHandling(short_call_seconds=5, max_attempts=3, retry_delays_seconds=[600, 1800])


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("no_answer", Outcome.NO_ANSWER),
        ("No-Answer", Outcome.NO_ANSWER),
        (" noanswer ", Outcome.NO_ANSWER),
        ("busy", Outcome.BUSY),
        ("failed", Outcome.FAILED),
        ("unknown", Outcome.FAILED),
        ("completed", None),
        ("", None),
        (None, None),
    ],
)
def test_the_providers_status_names_an_outcome(status: str | None, outcome: Outcome | None) -> None:
    assert provider_outcome(status) is outcome


def test_an_answered_call_as_long_as_the_short_call_limit_is_answered() -> None:
    assert (
        classify_end(duration=5, answered=True, provider_status=None, handling=HANDLING) is Outcome.ANSWERED
    )
    assert classify_end(duration=4.9, answered=True, provider_status=None, handling=HANDLING) is Outcome.SHORT


def test_a_call_end_without_a_call_start_or_a_duration_counts_as_zero_seconds() -> None:
    assert classify_end(duration=45, answered=False, provider_status=None, handling=HANDLING) is Outcome.SHORT
    assert (
        classify_end(duration=None, answered=True, provider_status=None, handling=HANDLING) is Outcome.SHORT
    )


def test_with_no_short_call_limit_only_a_call_of_zero_seconds_is_short() -> None:
    handling = CallHandling(short_call_seconds=0)
    assert classify_end(duration=0, answered=True, provider_status=None, handling=handling) is Outcome.SHORT
    assert (
        classify_end(duration=1, answered=True, provider_status=None, handling=handling) is Outcome.ANSWERED
    )


def test_the_providers_status_counts_only_for_a_call_never_answered() -> None:
    assert classify_end(duration=0, answered=False, provider_status="busy", handling=HANDLING) is Outcome.BUSY
    answered = classify_end(duration=30, answered=True, provider_status="busy", handling=HANDLING)
    assert answered is Outcome.ANSWERED


def test_an_answered_attempt_goes_to_the_postcall_even_when_cancelled() -> None:
    decision = after_attempt(HANDLING, attempt=3, outcome=Outcome.ANSWERED, now=NOW, cancelled=True)
    assert decision == Decision("postcall") and decision.status is CallStatus.WAITING_POSTCALL


def test_another_attempt_follows_after_its_delay_the_last_delay_repeating() -> None:
    first = after_attempt(HANDLING, attempt=1, outcome=Outcome.SHORT, now=NOW, cancelled=False)
    assert first == Decision("retry", NOW + timedelta(seconds=600)) and first.status is CallStatus.SCHEDULED
    handling = CallHandling(max_attempts=5, retry_delays_seconds=[600, 1800])
    fourth = after_attempt(handling, attempt=4, outcome=Outcome.BUSY, now=NOW, cancelled=False)
    assert fourth.retry_at == NOW + timedelta(seconds=1800)


def test_the_last_attempt_exhausts_the_call_and_a_cancel_ends_it() -> None:
    last = after_attempt(HANDLING, attempt=3, outcome=Outcome.NO_ANSWER, now=NOW, cancelled=False)
    assert last == Decision("exhausted") and last.status is CallStatus.EXHAUSTED
    cancelled = after_attempt(HANDLING, attempt=1, outcome=Outcome.NO_ANSWER, now=NOW, cancelled=True)
    assert cancelled == Decision("cancelled") and cancelled.status is CallStatus.CANCELLED


@pytest.mark.parametrize(
    ("status", "answered", "outcome"),
    [
        ("in-progress", False, None),
        ("processing", True, None),
        ("initiated", False, Outcome.RING_TIMEOUT),
        ("failed", False, Outcome.NO_ANSWER),
        (None, False, Outcome.NO_ANSWER),  # ElevenLabs knows no such conversation
        ("failed", True, Outcome.SHORT),  # it was on the line, and ended with no conversation
        ("done", True, Outcome.SHORT),
    ],
)
def test_an_elevenlabs_conversations_status_tells_how_the_attempt_stands(
    status: str | None, answered: bool, outcome: Outcome | None
) -> None:
    assert status_outcome(status, answered=answered) is outcome
