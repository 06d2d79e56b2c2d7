"""The campaign preflight's computation (`happ_integ.campaigns.preflight`), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from happ_integ.calls.clock import next_window_start_in
from happ_integ.calls.config import CallingHours
from happ_integ.calls.contact_policy import ContactPolicy, NumberAttempts
from happ_integ.calls.zones import zones_for_number
from happ_integ.campaigns.preflight import Preflight, preflight, required_names
from happ_integ.campaigns.recipients import RecipientIn, check_recipients

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday
START = datetime(2026, 12, 9, 6, 0, tzinfo=UTC)  # 08:00 in Kyiv, a Wednesday
HOURS = CallingHours(timezone="recipient", start="09:00", end="20:00", weekdays=[1, 2, 3, 4, 5, 6, 7])
RU_MOBILE = "+79161234567"
SUPPRESSED = "+380994829500"


def run(items: list[RecipientIn], **kw: object) -> Preflight:
    accepted, rejected = check_recipients(items, "UA")
    args: dict[str, object] = {
        "hours": HOURS,
        "now": NOW,
        "start_at": START,
        "suppressed": {SUPPRESSED},
        "required_variables": ["name", "webinar"],
        "average_call_seconds": 100.0,
        "concurrency": 2,
    } | kw
    return preflight(items, accepted, rejected, **args)  # type: ignore[arg-type]


def mixed() -> list[RecipientIn]:
    return [
        RecipientIn(phone_number="099 482 95 73", variables={"name": "Іван"}),
        RecipientIn(phone_number="12", id="bad"),
        RecipientIn(phone_number=SUPPRESSED, variables={"name": "x", "webinar": "y"}),
        RecipientIn(phone_number=RU_MOBILE, variables={"timezone": "recipient", "name": "x", "webinar": "y"}),
        RecipientIn(phone_number="+380994829574", id="lead-4", variables={"name": "x", "webinar": "y"}),
        RecipientIn(phone_number="+380994829575", id="lead-4"),
    ]


def test_a_mixed_list_is_answered_row_by_row_in_order() -> None:
    answer = run(mixed())
    rows = answer.recipients
    assert [r.index for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r.valid for r in rows] == [True, False, True, True, True, False]
    assert rows[1].error == "phone_number is not a valid phone number"
    assert rows[1].phone_number is None and rows[1].id == "bad"
    assert rows[5].error == "this id is already in the campaign"

    # Masked, never whole; the id is shown only when one was given (a defaulted id is the number).
    assert rows[0].phone_number == "+38099*****73" and rows[0].id is None
    assert rows[4].id == "lead-4"
    assert all("+380994829573" not in r.model_dump_json() for r in rows)

    assert rows[0].region == "UA" and rows[3].region == "RU"
    assert rows[0].timezones == ["Europe/Kyiv"] and not rows[0].ambiguous_timezone
    # "recipient" is no zone: ignored, as the call ignores it; the number's 16 zones apply.
    assert rows[3].ambiguous_timezone and rows[3].timezones == zones_for_number(RU_MOBILE)

    assert [r.suppressed for r in rows] == [False, False, True, False, False, False]
    assert rows[2].first_dial_at is None
    assert rows[0].missing_variables == ["webinar"]
    assert rows[4].missing_variables == []

    # start_at is in the future: 09:00 in Kyiv on that day, not now.
    assert rows[0].first_dial_at == datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    assert rows[3].first_dial_at == next_window_start_in(START, HOURS, zones_for_number(RU_MOBILE))
    assert rows[3].first_dial_at is not None and rows[3].first_dial_at >= START

    assert answer.counts.model_dump() == {
        "total": 6,
        "valid": 4,
        "invalid": 2,
        "suppressed": 1,
        "capped": 0,
        "ambiguous_timezone": 1,
        "missing_variables": 1,
    }
    # Three valid, unsuppressed recipients, two at once: two rounds of 100 s from the first dial.
    first = min(r.first_dial_at for r in rows if r.first_dial_at)
    assert answer.projected_end_at == first + timedelta(seconds=200)


def test_without_calling_hours_or_start_at_the_first_dial_is_now() -> None:
    answer = run(mixed()[:1], hours=None, start_at=None, concurrency=5)
    assert answer.recipients[0].first_dial_at == NOW
    assert answer.projected_end_at == NOW + timedelta(seconds=100)


def test_a_start_at_in_the_past_counts_from_now() -> None:
    answer = run(mixed()[:1], hours=None, start_at=NOW - timedelta(days=1))
    assert answer.recipients[0].first_dial_at == NOW


def test_a_window_that_never_opens_has_no_first_dial_and_no_end() -> None:
    # 09:00-10:00 in each of a Russian mobile's zones, Europe/Moscow to Asia/Anadyr: no overlap.
    narrow = HOURS.model_copy(update={"end": "10:00"})
    answer = run([RecipientIn(phone_number=RU_MOBILE)], hours=narrow, start_at=None)
    assert answer.recipients[0].ambiguous_timezone
    assert answer.recipients[0].first_dial_at is None
    assert answer.projected_end_at is None


def test_only_suppressed_or_invalid_recipients_project_no_end() -> None:
    items = [RecipientIn(phone_number=SUPPRESSED), RecipientIn(phone_number="12")]
    answer = run(items)
    assert answer.projected_end_at is None
    assert answer.counts.valid == 1 and answer.counts.suppressed == 1


def test_the_campaigns_own_timezone_variable_wins_over_the_number() -> None:
    items = [RecipientIn(phone_number=RU_MOBILE, variables={"timezone": "Europe/Moscow"})]
    row = run(items).recipients[0]
    assert row.timezones == ["Europe/Moscow"] and not row.ambiguous_timezone


def test_required_names_reads_a_list_or_an_object_holding_one() -> None:
    assert required_names(None) == []
    assert required_names(["name", 3, ""]) == ["name"]
    assert required_names({"variables": ["name", "webinar"]}) == ["name", "webinar"]
    assert required_names({"other": 1}) == []


def test_caps_flag_numbers_dialled_recently_and_numbers_the_list_repeats() -> None:
    """A number with two attempts today under a cap of 2 waits for the older to expire; a number
    the list holds three times is capped from its third (a day) or second (the gap) recipient."""
    full, shared, fresh = "+380994829581", "+380994829582", "+380994829583"
    items = [
        RecipientIn(phone_number=full, id="full"),
        RecipientIn(phone_number=shared, id="s1"),
        RecipientIn(phone_number=shared, id="s2"),
        RecipientIn(phone_number=shared, id="s3"),
        RecipientIn(phone_number=fresh, id="fresh"),
    ]
    older = NOW - timedelta(hours=20)
    state = {full: NumberAttempts(latest_at=NOW - timedelta(hours=1), cap_at=older, in_window=2)}
    no_gap = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=0)
    answer = run(items, hours=None, start_at=None, contact_policy=no_gap, attempts=state)
    rows = {r.id: r for r in answer.recipients}
    assert rows["full"].capped and rows["full"].first_dial_at == older + timedelta(hours=24)
    assert "max_attempts_per_day: 2" in (rows["full"].capped_reason or "")
    assert not rows["s1"].capped and not rows["s2"].capped and rows["s1"].first_dial_at == NOW
    assert rows["s3"].capped and "2 earlier recipients" in (rows["s3"].capped_reason or "")
    assert rows["s3"].first_dial_at == NOW + timedelta(hours=24)  # an estimate: a day later
    assert not rows["fresh"].capped and answer.counts.capped == 2

    gap = ContactPolicy(max_attempts_per_day=3, min_minutes_between_attempts=60)
    rows = {
        r.id: r for r in run(items, hours=None, start_at=None, contact_policy=gap, attempts={}).recipients
    }
    assert [rows[i].capped for i in ("s1", "s2", "s3")] == [False, True, True]
    assert rows["s2"].first_dial_at == NOW + timedelta(minutes=60)
    assert rows["s3"].first_dial_at == NOW + timedelta(minutes=120)
    # Without a policy nothing is capped (the caps are not checked).
    assert run(items, hours=None, start_at=None).counts.capped == 0


def test_a_cap_that_frees_before_the_window_opens_holds_nothing_back() -> None:
    phone = "+380994829584"
    state = {
        phone: NumberAttempts(
            latest_at=NOW - timedelta(hours=2), cap_at=NOW - timedelta(hours=23), in_window=1
        )
    }
    policy = ContactPolicy(max_attempts_per_day=1, min_minutes_between_attempts=0)
    # The campaign starts on Wednesday, long after the cap frees the number (an hour from now).
    (row,) = run([RecipientIn(phone_number=phone)], contact_policy=policy, attempts=state).recipients
    assert not row.capped and row.first_dial_at == START + timedelta(hours=1)  # 09:00 in Kyiv
    (row,) = run(
        [RecipientIn(phone_number=phone)], hours=None, start_at=None, contact_policy=policy, attempts=state
    ).recipients
    assert row.capped and row.first_dial_at == NOW + timedelta(hours=1)
