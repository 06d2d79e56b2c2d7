"""The `contact_policy` config and its decision, without a database: the caps at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from happ_integ.calls.contact_policy import CONFIG_KEY, AttemptGrant, ContactPolicy, decide_attempt

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
POLICY = ContactPolicy()


def test_defaults_are_three_a_day_an_hour_apart() -> None:
    assert CONFIG_KEY == "contact_policy"
    assert POLICY.model_dump() == {"max_attempts_per_day": 3, "min_minutes_between_attempts": 60}
    assert POLICY.min_gap == timedelta(hours=1)
    assert "Florida" in (ContactPolicy.__doc__ or "") and "decide" in (ContactPolicy.__doc__ or "")


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts_per_day": 0},
        {"max_attempts_per_day": 51},
        {"min_minutes_between_attempts": -1},
        {"min_minutes_between_attempts": 1441},
        {"max_attempts": 3},  # call_handling's field, not this config's
    ],
)
def test_out_of_range_or_unknown_fields_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ContactPolicy.model_validate(fields)


def test_a_partial_override_keeps_the_other_cap() -> None:
    merged = ContactPolicy.model_validate({**POLICY.model_dump(), "max_attempts_per_day": 1})
    assert merged == ContactPolicy(max_attempts_per_day=1, min_minutes_between_attempts=60)
    assert ContactPolicy(max_attempts_per_day=50, min_minutes_between_attempts=0).min_gap == timedelta(0)
    assert ContactPolicy(min_minutes_between_attempts=1440).min_gap == timedelta(days=1)


def test_a_number_never_dialled_is_allowed() -> None:
    assert decide_attempt(POLICY, T0, latest_at=None, cap_at=None, in_window=0) == AttemptGrant(allowed=True)


def test_the_daily_cap_holds_until_its_oldest_counted_attempt_is_exactly_24_hours_old() -> None:
    almost = T0 + timedelta(hours=24) - timedelta(microseconds=1)
    grant = decide_attempt(POLICY, almost, latest_at=T0 + timedelta(hours=2), cap_at=T0, in_window=3)
    assert grant == AttemptGrant(
        allowed=False,
        next_allowed_at=T0 + timedelta(hours=24),
        reason="3 attempts in 24 h (contact_policy.max_attempts_per_day: 3)",
    )
    at_24h = T0 + timedelta(hours=24)
    assert decide_attempt(POLICY, at_24h, latest_at=T0 + timedelta(hours=2), cap_at=T0, in_window=2).allowed


def test_the_gap_holds_until_exactly_min_minutes() -> None:
    grant = decide_attempt(POLICY, T0 + timedelta(minutes=12), latest_at=T0, cap_at=None, in_window=1)
    assert grant == AttemptGrant(
        allowed=False,
        next_allowed_at=T0 + timedelta(minutes=60),
        reason="last attempt 12 min ago (contact_policy.min_minutes_between_attempts: 60)",
    )
    assert decide_attempt(POLICY, T0 + timedelta(minutes=60), latest_at=T0, cap_at=None, in_window=1).allowed
    seconds = decide_attempt(POLICY, T0 + timedelta(seconds=40), latest_at=T0, cap_at=None, in_window=1)
    assert seconds.reason == "last attempt 40 s ago (contact_policy.min_minutes_between_attempts: 60)"
    no_gap = ContactPolicy(min_minutes_between_attempts=0)
    assert decide_attempt(no_gap, T0, latest_at=T0, cap_at=None, in_window=1).allowed


def test_both_caps_binding_wait_for_the_later_and_name_both() -> None:
    policy = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=120)
    # Attempts at 10:00 (yesterday, 23 h ago) and 10:30 today: the day frees up at 10:00, the gap
    # at 12:30.
    now = T0 + timedelta(hours=23, minutes=40)
    latest = T0 + timedelta(hours=23, minutes=30)
    grant = decide_attempt(policy, now, latest_at=latest, cap_at=T0, in_window=2)
    assert not grant.allowed
    assert grant.next_allowed_at == latest + timedelta(minutes=120)
    assert grant.reason == (
        "2 attempts in 24 h (contact_policy.max_attempts_per_day: 2); "
        "last attempt 10 min ago (contact_policy.min_minutes_between_attempts: 120)"
    )
    # The other way round: the day decides.
    early = decide_attempt(
        policy, T0 + timedelta(hours=3), latest_at=T0 + timedelta(hours=2), cap_at=T0, in_window=2
    )
    assert early.next_allowed_at == T0 + timedelta(hours=24)
