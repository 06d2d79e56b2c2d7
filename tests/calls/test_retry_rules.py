"""Retries per outcome (`CallHandling.max_attempts`, `retry_delays_seconds` as mappings by
outcome), the decisions that use them (`happ_integ.calls.rules`, `attempts`), and the plain forms
answering exactly as they always have."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from happ_integ.calls.attempts import apply_call_event
from happ_integ.calls.config import (
    DEFAULT_RETRY_DELAYS,
    RETRY_OUTCOMES,
    RULE_KEYS,
    CallHandling,
    RuleKey,
)
from happ_integ.calls.models import Attempt, CallEvent, CallState, CallStatus, Outcome
from happ_integ.calls.rules import Decision, after_analysis, after_attempt

NOW = datetime(2026, 1, 21, 12, 0, tzinfo=UTC)
BY_OUTCOME = CallHandling(
    max_attempts={"busy": 5, "no_answer": 2, "default": 3},
    retry_delays_seconds={"busy": [60, 120], "no_answer": [1800], "default": [600]},
)
UNANSWERED = [outcome for outcome in Outcome if outcome is not Outcome.ANSWERED]


def decide(handling: CallHandling, attempt: int, outcome: Outcome) -> Decision:
    return after_attempt(handling, attempt=attempt, outcome=outcome, now=NOW, cancelled=False)


def retry_in(seconds: int) -> Decision:
    return Decision("retry", NOW + timedelta(seconds=seconds))


def test_the_keys_are_the_retried_outcomes_voicemail_and_default() -> None:
    assert typing.get_args(RuleKey) == RULE_KEYS
    assert set(RETRY_OUTCOMES) == {o.value for o in UNANSWERED} | {"voicemail"}
    assert RULE_KEYS[-1] == "default"


# Delays and limits by outcome ------------------------------------------------------------------


def test_each_outcome_waits_its_own_delays_the_last_repeating() -> None:
    assert [BY_OUTCOME.retry_delay(n, Outcome.BUSY) for n in (1, 2, 3, 4)] == [60, 120, 120, 120]
    assert [BY_OUTCOME.retry_delay(n, "no_answer") for n in (1, 2)] == [1800, 1800]
    assert BY_OUTCOME.retry_delays_for(Outcome.BUSY) == ([60, 120], "retry_delays_seconds.busy")


def test_an_outcome_not_named_takes_the_default_key() -> None:
    for outcome in (Outcome.SHORT, Outcome.FAILED, Outcome.RING_TIMEOUT, Outcome.ORIGINATE_FAILED, None):
        assert BY_OUTCOME.retry_delays_for(outcome) == ([600], "retry_delays_seconds.default")
        assert BY_OUTCOME.max_attempts_rule(outcome) == (3, "max_attempts.default")
    assert BY_OUTCOME.max_attempts_for("busy") == 5 and BY_OUTCOME.max_attempts_for("no_answer") == 2


def test_without_a_default_key_an_outcome_not_named_takes_the_built_in_default() -> None:
    handling = CallHandling(max_attempts={"busy": 6}, retry_delays_seconds={"busy": [60]})
    assert handling.retry_delays_for("no_answer") == (
        list(DEFAULT_RETRY_DELAYS),
        "retry_delays_seconds (built-in default)",
    )
    assert [handling.retry_delay(n, "no_answer") for n in (1, 2, 3, 9)] == [600, 1800, 3600, 3600]
    assert handling.max_attempts_rule("short") == (3, "max_attempts (built-in default)")
    assert handling.max_attempts_rule(None) == (3, "max_attempts (built-in default)")


def test_the_plain_forms_apply_to_every_outcome() -> None:
    handling = CallHandling(max_attempts=4, retry_delays_seconds=[10, 20])
    for outcome in [*UNANSWERED, "voicemail", None]:
        assert handling.retry_delays_for(outcome) == ([10, 20], "retry_delays_seconds")
        assert handling.max_attempts_rule(outcome) == (4, "max_attempts")


def test_the_decisions_follow_the_outcome_of_the_attempt_that_ended() -> None:
    assert decide(BY_OUTCOME, 1, Outcome.BUSY) == retry_in(60)
    assert decide(BY_OUTCOME, 4, Outcome.BUSY) == retry_in(120)
    assert decide(BY_OUTCOME, 5, Outcome.BUSY) == Decision("exhausted")
    assert decide(BY_OUTCOME, 1, Outcome.NO_ANSWER) == retry_in(1800)
    # Attempts of every outcome count: a second attempt unanswered is the last for no_answer.
    assert decide(BY_OUTCOME, 2, Outcome.NO_ANSWER) == Decision("exhausted")
    assert decide(BY_OUTCOME, 2, Outcome.SHORT) == retry_in(600)
    assert decide(BY_OUTCOME, 3, Outcome.RING_TIMEOUT) == Decision("exhausted")
    assert decide(BY_OUTCOME, 1, Outcome.ANSWERED) == Decision("postcall")
    cancelled = after_attempt(BY_OUTCOME, attempt=1, outcome=Outcome.BUSY, now=NOW, cancelled=True)
    assert cancelled == Decision("cancelled")


def test_the_decision_names_the_rule_that_applied() -> None:
    assert decide(BY_OUTCOME, 2, Outcome.BUSY).reason == (
        "busy: attempt 3 of 5 in 120 s (retry_delays_seconds.busy; max_attempts.busy)"
    )
    assert decide(BY_OUTCOME, 1, Outcome.SHORT).reason == (
        "short: attempt 2 of 3 in 600 s (retry_delays_seconds.default; max_attempts.default)"
    )
    assert decide(BY_OUTCOME, 2, Outcome.NO_ANSWER).reason == (
        "no_answer: no attempt left after 2 of 2 (max_attempts.no_answer)"
    )
    plain = decide(CallHandling(), 1, Outcome.NO_ANSWER)
    assert plain.reason == "no_answer: attempt 2 of 3 in 600 s (retry_delays_seconds; max_attempts)"
    assert decide(CallHandling(), 1, Outcome.ANSWERED).reason == "answered: the post-call follows"
    cancelled = after_attempt(BY_OUTCOME, attempt=1, outcome=Outcome.BUSY, now=NOW, cancelled=True)
    assert cancelled.reason == "busy: cancelled, no further attempt"


def test_a_webhooks_busy_end_uses_the_busy_rule_and_answers_as_before() -> None:
    state = CallState(call_id="c_1", integration="sofa", status=CallStatus.DIALING, attempt=1)
    attempt = Attempt(number=1, started_at=NOW, provider_call_id="va-1")
    state.attempts.append(attempt)
    end = CallEvent(event_type="call_end", provider_status="busy")
    answer, decision = apply_call_event(state, attempt, end, BY_OUTCOME, NOW)
    assert decision == retry_in(60) and decision.reason.startswith("busy: attempt 2 of 5 in 60 s")
    assert answer.message == "busy: another attempt is scheduled" and answer.next_retry_at == NOW + timedelta(
        seconds=60
    )


# The edges -------------------------------------------------------------------------------------


def test_the_limits_at_their_edges() -> None:
    handling = CallHandling(
        max_attempts={"busy": 1, "no_answer": 20},
        retry_delays_seconds={"busy": [0], "no_answer": [604800] * 20},
    )
    assert decide(handling, 1, Outcome.BUSY) == Decision("exhausted")  # one attempt: never retried
    assert decide(handling, 19, Outcome.NO_ANSWER) == retry_in(604800)
    assert decide(handling, 20, Outcome.NO_ANSWER) == Decision("exhausted")
    assert CallHandling(retry_delays_seconds={"short": [0]}).retry_delay(1, "short") == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"max_attempts": 0}, "max_attempts is 1 to 20, not 0"),
        ({"max_attempts": 21}, "max_attempts is 1 to 20, not 21"),
        ({"max_attempts": {"busy": 0}}, "max_attempts.busy is 1 to 20, not 0"),
        ({"max_attempts": {"busy": 21}}, "max_attempts.busy is 1 to 20, not 21"),
        ({"max_attempts": {"busy": "often"}}, "max_attempts.busy is a whole number of attempts"),
        ({"max_attempts": "often"}, 'or a mapping by outcome such as {"busy": 5, "default": 3}'),
        ({"max_attempts": [3]}, "max_attempts is a whole number of attempts"),
        ({"max_attempts": {}}, "max_attempts: an empty mapping"),
        ({"max_attempts": {"answered": 2}}, "an answered call is never retried"),
        ({"max_attempts": {"Busy": 2}}, "max_attempts: unknown outcome 'Busy'; use one of short, no_answer"),
        ({"retry_delays_seconds": []}, "retry_delays_seconds has 1 to 20 delays, not 0"),
        ({"retry_delays_seconds": [60] * 21}, "retry_delays_seconds has 1 to 20 delays, not 21"),
        ({"retry_delays_seconds": [-1]}, "each delay is 0 to 604800 seconds"),
        ({"retry_delays_seconds": [604801]}, "each delay is 0 to 604800 seconds"),
        ({"retry_delays_seconds": {"busy": []}}, "retry_delays_seconds.busy has 1 to 20 delays, not 0"),
        (
            {"retry_delays_seconds": {"busy": [604801]}},
            "retry_delays_seconds.busy: each delay is 0 to 604800",
        ),
        ({"retry_delays_seconds": {"busy": 60}}, "retry_delays_seconds.busy is a list of delays in seconds"),
        (
            {"retry_delays_seconds": "soon"},
            "retry_delays_seconds is a list of delays in seconds, or a mapping",
        ),
        ({"retry_delays_seconds": {"weekend": [60]}}, "retry_delays_seconds: unknown outcome 'weekend'"),
        ({"retry_delays_seconds": {}}, "retry_delays_seconds: an empty mapping"),
    ],
)
def test_a_rule_out_of_range_or_for_no_outcome_is_refused_clearly(
    value: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CallHandling.model_validate(value)
    errors = refused.value.errors()
    assert len(errors) == 1 and errors[0]["loc"] == (next(iter(value)),)
    assert message in errors[0]["msg"]


def test_every_outcome_and_default_is_accepted_as_a_key() -> None:
    handling = CallHandling(
        max_attempts=dict.fromkeys(RULE_KEYS, 4),
        retry_delays_seconds={key: [n] for n, key in enumerate(RULE_KEYS)},
    )
    for n, key in enumerate(RULE_KEYS):
        assert handling.retry_delays_for(key) == ([n], f"retry_delays_seconds.{key}")
    assert CallHandling(max_attempts={Outcome.BUSY: 2}).max_attempts == {"busy": 2}  # type: ignore[dict-item]


def test_the_mappings_round_trip_through_json() -> None:
    again = CallHandling.model_validate_json(BY_OUTCOME.model_dump_json())
    assert again == BY_OUTCOME and again.max_attempts == {"busy": 5, "no_answer": 2, "default": 3}
    assert CallHandling.model_validate(BY_OUTCOME.model_dump()) == BY_OUTCOME


# Voicemail -------------------------------------------------------------------------------------


def test_a_voicemail_is_retried_only_when_the_rule_names_it() -> None:
    def analysed(handling: CallHandling, attempt: int, outcome: str = "voicemail") -> Decision | None:
        return after_analysis(handling, attempt=attempt, analysis_outcome=outcome, now=NOW, cancelled=False)

    # As always: an answered call is not retried, even with a default rule.
    assert analysed(CallHandling(), 1) is None
    assert analysed(CallHandling(retry_delays_seconds={"default": [60]}), 1) is None
    handling = CallHandling(max_attempts={"voicemail": 2}, retry_delays_seconds={"voicemail": [7200]})
    assert handling.retries_voicemail
    decision = analysed(handling, 1)
    assert decision == retry_in(7200) and decision is not None
    assert (
        decision.reason
        == "voicemail: attempt 2 of 2 in 7200 s (retry_delays_seconds.voicemail; max_attempts.voicemail)"
    )
    assert analysed(handling, 2) is None  # no attempt left: the call completes
    assert analysed(handling, 1, "interested") is None
    assert after_analysis(handling, attempt=1, analysis_outcome="voicemail", now=NOW, cancelled=True) is None


# The plain forms, as they always were ----------------------------------------------------------


def old_retry_delay(delays: list[int], attempt: int) -> int:
    return delays[min(attempt, len(delays)) - 1]


def old_after_attempt(
    max_attempts: int, delays: list[int], attempt: int, outcome: Outcome, cancelled: bool
) -> Decision:
    if outcome is Outcome.ANSWERED:
        return Decision("postcall")
    if cancelled:
        return Decision("cancelled")
    if attempt >= max_attempts:
        return Decision("exhausted")
    return Decision("retry", NOW + timedelta(seconds=old_retry_delay(delays, attempt)))


@settings(max_examples=500, deadline=None)
@given(
    max_attempts=st.integers(1, 20),
    delays=st.lists(st.integers(0, 604800), min_size=1, max_size=20),
    attempt=st.integers(0, 25),
    outcome=st.sampled_from(list(Outcome)),
    cancelled=st.booleans(),
)
def test_the_plain_forms_decide_exactly_as_before(
    max_attempts: int, delays: list[int], attempt: int, outcome: Outcome, cancelled: bool
) -> None:
    handling = CallHandling(max_attempts=max_attempts, retry_delays_seconds=delays)
    assert handling.max_attempts == max_attempts and handling.retry_delays_seconds == delays
    assert (
        handling.retry_delay(attempt)
        == handling.retry_delay(attempt, outcome)
        == old_retry_delay(delays, attempt)
    )
    new = after_attempt(handling, attempt=attempt, outcome=outcome, now=NOW, cancelled=cancelled)
    old = old_after_attempt(max_attempts, delays, attempt, outcome, cancelled)
    assert (new.kind, new.retry_at) == (old.kind, old.retry_at)
    dumped = handling.model_dump(mode="json")
    assert dumped["max_attempts"] == max_attempts and dumped["retry_delays_seconds"] == delays


def test_the_plain_forms_read_and_write_as_before() -> None:
    assert CallHandling().model_dump()["max_attempts"] == 3
    assert CallHandling().model_dump()["retry_delays_seconds"] == [600, 1800, 3600]
    # What pydantic accepted for an int and a list of ints, it still accepts.
    lax = CallHandling.model_validate({"max_attempts": "4", "retry_delays_seconds": ["60", 120.0]})
    assert lax.max_attempts == 4 and lax.retry_delays_seconds == [60, 120]
    assert (
        CallHandling.model_validate_json('{"max_attempts": 2, "retry_delays_seconds": [5]}').retry_delay(7)
        == 5
    )


# The schema ------------------------------------------------------------------------------------


def test_the_json_schema_and_the_openapi_document_stay_valid() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    for mode in ("validation", "serialization"):
        assert jsonschema_rs.meta.is_valid(CallHandling.model_json_schema(mode=mode))  # type: ignore[arg-type]
    schema = CallHandling.model_json_schema()
    accepts = jsonschema_rs.validator_for(schema).is_valid
    assert accepts({"max_attempts": 3, "retry_delays_seconds": [600]})
    assert accepts(BY_OUTCOME.model_dump(mode="json"))
    assert accepts({"calling_hours": {"timezone": "recipient", "skip_dates": ["2026-01-01"]}})
    assert not accepts({"max_attempts": {"weekend": 2}}) and not accepts({"max_attempts": 0})
    assert not accepts({"retry_delays_seconds": {"busy": []}}) and not accepts({"retry_delays_seconds": [-1]})

    app = FastAPI()

    @app.put("/call_handling")
    def put(handling: CallHandling) -> CallHandling:
        return handling

    document = app.openapi()
    assert jsonschema_rs.meta.is_valid(document["components"]["schemas"]["CallHandling-Input"])
    assert jsonschema_rs.meta.is_valid(document["components"]["schemas"]["CallHandling-Output"])
