"""The calling window in one zone and in several at once (`happ_integ.calls.clock`): overlaps,
midnight UTC, clock changes, skip dates; and `next_window_start` as it has always answered."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from happ_integ.calls.clock import (
    SEARCH_DAYS,
    ZonesUsed,
    next_window_start,
    next_window_start_in,
    spoken_zone,
    zones_for,
)
from happ_integ.calls.config import CallingHours

KYIV, VLADIVOSTOK = "Europe/Kyiv", "Asia/Vladivostok"
EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
HOURS = CallingHours()  # 09:00–20:00, Monday to Saturday


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)


def is_open(moment: datetime, hours: CallingHours, zones: list[str]) -> bool:
    """The window by each zone's wall clock, as the module docstring says."""
    start, end = time.fromisoformat(hours.start), time.fromisoformat(hours.end)
    for zone in zones:
        wall = moment.astimezone(ZoneInfo(zone))
        if wall.isoweekday() not in hours.weekdays or wall.date() in hours.skip_dates:
            return False
        if not start <= wall.time().replace(tzinfo=None) < end:
            return False
    return True


# One zone ---------------------------------------------------------------------------------------


def test_next_window_start_in_one_zone_is_next_window_start() -> None:
    now = local(KYIV, 2026, 1, 21, 21)  # Wednesday, after closing
    assert next_window_start_in(now, HOURS, [KYIV]) == next_window_start(now, HOURS) == utc(2026, 1, 22, 7)
    assert next_window_start_in(now, HOURS, KYIV) == utc(2026, 1, 22, 7)  # one name will do
    inside = local(KYIV, 2026, 1, 21, 14)
    assert next_window_start_in(inside, HOURS, [KYIV]) is inside


def test_the_zones_given_win_over_the_configs() -> None:
    now = utc(2026, 1, 21, 12)  # 14:00 in Kyiv, 21:00 in Tokyo
    assert next_window_start_in(now, HOURS, ["Asia/Tokyo"]) == utc(2026, 1, 22, 0)
    used = ZonesUsed(zones=["Asia/Tokyo"], source="recipient")
    assert next_window_start_in(now, HOURS, used) == utc(2026, 1, 22, 0)


def test_recipient_hours_read_without_a_callee_use_the_fallback() -> None:
    hours = CallingHours(timezone="recipient", fallback_timezone="Asia/Tokyo")
    assert next_window_start(utc(2026, 1, 21, 12), hours) == utc(2026, 1, 22, 0)
    assert next_window_start(utc(2026, 1, 21, 12), CallingHours(timezone="recipient")) == utc(2026, 1, 21, 12)


def test_no_zone_or_an_unknown_one_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        next_window_start_in(utc(2026, 1, 21), HOURS, [])
    with pytest.raises(ValueError, match="'Mars/Olympus'"):
        next_window_start_in(utc(2026, 1, 21), HOURS, [KYIV, "Mars/Olympus"])
    now = utc(2026, 1, 21)
    assert next_window_start_in(now, None, []) is now  # no calling hours: any time, in any zone


# Several zones ----------------------------------------------------------------------------------


def test_kyiv_and_vladivostok_overlap_three_hours_in_winter() -> None:
    # Kyiv 09–20 is 07–18 UTC, Vladivostok 09–20 is 23–10 UTC: both are open 07–10 UTC.
    zones = [KYIV, VLADIVOSTOK]
    assert next_window_start_in(local(KYIV, 2026, 1, 21, 8), HOURS, zones) == utc(2026, 1, 21, 7)
    inside = local(KYIV, 2026, 1, 21, 11, 59)
    assert next_window_start_in(inside, HOURS, zones) is inside
    # Past noon in Kyiv, Vladivostok has closed: the next morning.
    assert next_window_start_in(local(KYIV, 2026, 1, 21, 12), HOURS, zones) == utc(2026, 1, 22, 7)
    # Saturday's overlap, then Sunday is closed in both: Monday.
    assert next_window_start_in(local(KYIV, 2026, 1, 24, 12), HOURS, zones) == utc(2026, 1, 26, 7)


def test_zones_whose_windows_never_overlap_are_a_value_error_naming_them() -> None:
    # Kyiv 07–18 UTC, Honolulu 19–06 UTC.
    with pytest.raises(ValueError, match=r"not open in all of Europe/Kyiv, Pacific/Honolulu at once"):
        next_window_start_in(utc(2026, 1, 21), HOURS, [KYIV, "Pacific/Honolulu"])


def test_an_overlap_across_midnight_utc() -> None:
    # New York 09–20 is 14–01 UTC and Los Angeles 09–20 is 17–04 UTC in winter: 17–01 UTC.
    zones = ["America/Los_Angeles", "America/New_York"]
    weekdays = CallingHours(weekdays=[1, 2, 3, 4, 5])
    friday_night = utc(2026, 1, 24, 0, 30)  # Saturday in UTC, still Friday afternoon in both
    assert next_window_start_in(friday_night, weekdays, zones) is friday_night
    # 20:00 in New York: closed until Monday 09:00 in Los Angeles.
    assert next_window_start_in(utc(2026, 1, 24, 1), weekdays, zones) == utc(2026, 1, 26, 17)


def test_guam_and_honolulu_meet_across_the_date_line() -> None:
    # Guam (UTC+10) 09–20 is 23–10 UTC the day before; Honolulu (UTC-10) 09–20 is 19–06 UTC: both
    # are open 23–06 UTC, Guam's morning being Honolulu's afternoon of the day before.
    zones = ["Pacific/Guam", "Pacific/Honolulu"]
    assert next_window_start_in(utc(2026, 1, 19, 20), HOURS, zones) == utc(2026, 1, 19, 23)
    # Saturday afternoon in Honolulu is Sunday in Guam; Sunday afternoon in Honolulu is Sunday:
    # Monday 13:00 in Honolulu, Tuesday 09:00 in Guam.
    assert next_window_start_in(utc(2026, 1, 24, 20), HOURS, zones) == utc(2026, 1, 26, 23)


def test_a_russian_mobile_is_called_when_every_russian_zone_is_in_its_window() -> None:
    hours = CallingHours(timezone="recipient")
    used = zones_for(hours, "+79161234567")
    assert used.ambiguous
    # Anadyr (UTC+12) opens 21:00 UTC and closes 08:00 UTC; Bucharest (UTC+2) opens 07:00 UTC.
    opens = next_window_start_in(utc(2026, 1, 19), hours, used)
    assert opens == utc(2026, 1, 19, 7) and is_open(opens, hours, used.zones)
    assert not is_open(opens - timedelta(minutes=1), hours, used.zones)
    assert next_window_start_in(utc(2026, 1, 19, 8), hours, used) == utc(2026, 1, 20, 7)


def test_a_us_toll_free_number_has_half_an_hour_in_winter_and_none_in_summer() -> None:
    hours = CallingHours(timezone="recipient")
    used = zones_for(hours, "+18005551234")
    # St John's (UTC-3:30) closes at 23:30 UTC, Guam (UTC+10) opens at 23:00 UTC.
    opens = next_window_start_in(utc(2026, 1, 19), hours, used)
    assert opens == utc(2026, 1, 19, 23) and is_open(opens, hours, used.zones)
    assert next_window_start_in(utc(2026, 1, 19, 23, 30), hours, used) == utc(2026, 1, 20, 23)
    # On summer time St John's closes at 22:30 UTC: the zones never overlap.
    with pytest.raises(ValueError, match="Pacific/Guam"):
        next_window_start_in(utc(2026, 7, 20), hours, used)


# Clock changes ----------------------------------------------------------------------------------


def test_the_overlap_follows_kyivs_spring_change() -> None:
    # 29 March 2026, the last Sunday of March: Kyiv moves to UTC+3 at 03:00, Vladivostok stays.
    hours, zones = CallingHours(weekdays=EVERY_DAY), [KYIV, VLADIVOSTOK]
    assert next_window_start_in(local(KYIV, 2026, 3, 28, 12, 30), hours, zones) == utc(2026, 3, 29, 6)
    sunday = local(KYIV, 2026, 3, 29, 12, 30)  # 09:30 UTC: Vladivostok is open until 10:00 UTC
    assert next_window_start_in(sunday, hours, zones) is sunday
    assert next_window_start_in(local(KYIV, 2026, 3, 29, 13), hours, zones) == utc(2026, 3, 30, 6)


def test_the_overlap_follows_kyivs_autumn_change() -> None:
    # 25 October 2026, the last Sunday of October: Kyiv goes back to UTC+2 at 04:00.
    hours, zones = CallingHours(weekdays=EVERY_DAY), [KYIV, VLADIVOSTOK]
    saturday = local(KYIV, 2026, 10, 24, 12, 30)  # 09:30 UTC
    assert next_window_start_in(saturday, hours, zones) is saturday
    assert next_window_start_in(local(KYIV, 2026, 10, 24, 13), hours, zones) == utc(2026, 10, 25, 7)
    assert next_window_start_in(local(KYIV, 2026, 10, 25, 12, 30), hours, zones) == utc(2026, 10, 26, 7)


def test_new_york_and_london_between_their_spring_changes() -> None:
    # New York moves on 8 March 2026 (second Sunday), London on 29 March: for three weeks they are
    # four hours apart. London 09–20 GMT is 09–20 UTC; New York opens 14:00 UTC, then 13:00 UTC.
    zones = ["America/New_York", "Europe/London"]
    assert next_window_start_in(utc(2026, 3, 6, 20), HOURS, zones) == utc(2026, 3, 7, 14)
    assert next_window_start_in(utc(2026, 3, 7, 20), HOURS, zones) == utc(2026, 3, 9, 13)
    # After London's change it closes at 19:00 UTC.
    assert next_window_start_in(utc(2026, 3, 30, 19), HOURS, zones) == utc(2026, 3, 31, 13)


def test_new_york_and_london_between_their_autumn_changes() -> None:
    # London is back on GMT from 25 October, New York on EST from 1 November 2026.
    zones = ["America/New_York", "Europe/London"]
    assert next_window_start_in(utc(2026, 10, 30, 20), HOURS, zones) == utc(2026, 10, 31, 13)
    assert next_window_start_in(utc(2026, 10, 31, 20), HOURS, zones) == utc(2026, 11, 2, 14)


def test_a_start_in_the_hour_skipped_in_spring() -> None:
    # 02:30 does not exist in New York on 8 March 2026 (02:00 EST → 03:00 EDT). Read with the offset
    # from before the change it is 07:30 UTC, 03:30 EDT; asked after 03:00 EDT, it is open already.
    hours = CallingHours(timezone="America/New_York", start="02:30", weekdays=EVERY_DAY)
    assert next_window_start(local("America/New_York", 2026, 3, 8, 1), hours) == utc(2026, 3, 8, 7, 30)
    after_the_jump = local("America/New_York", 2026, 3, 8, 3, 10)
    assert next_window_start(after_the_jump, hours) is after_the_jump


def test_a_start_in_the_hour_repeated_in_autumn() -> None:
    # 01:00–02:00 happens twice in New York on 1 November 2026; 01:30 is its first occurrence.
    hours = CallingHours(timezone="America/New_York", start="01:30", weekdays=EVERY_DAY)
    assert next_window_start(local("America/New_York", 2026, 11, 1, 0, 30), hours) == utc(2026, 11, 1, 5, 30)
    # Asked during the repeat, before 01:30 again: open (never a moment before the one asked).
    repeat = local("America/New_York", 2026, 11, 1, 1, 10, fold=1)
    assert repeat.astimezone(UTC) == utc(2026, 11, 1, 6, 10)
    assert next_window_start(repeat, hours) is repeat


# Skip dates -------------------------------------------------------------------------------------


def test_a_holiday_closes_the_day() -> None:
    christmas = CallingHours(skip_dates=[date(2026, 1, 7)])  # a Wednesday
    assert next_window_start(local(KYIV, 2026, 1, 7, 8), christmas) == local(KYIV, 2026, 1, 8, 9)
    assert next_window_start(local(KYIV, 2026, 1, 7, 12), christmas) == local(KYIV, 2026, 1, 8, 9)
    assert next_window_start(local(KYIV, 2026, 1, 6, 19), christmas) == local(KYIV, 2026, 1, 6, 19)


def test_holidays_and_a_weekend_in_a_row() -> None:
    new_year = CallingHours(weekdays=[1, 2, 3, 4, 5], skip_dates=[date(2026, 1, 1), date(2026, 1, 2)])
    assert next_window_start(local(KYIV, 2025, 12, 31, 21), new_year) == local(KYIV, 2026, 1, 5, 9)


def test_skipped_dates_longer_than_the_search_are_searched_past() -> None:
    # Every Monday of 2026 closed, and only Mondays allowed: the first Monday of 2027.
    mondays = [date(2026, 1, 5) + timedelta(weeks=n) for n in range(52)]
    hours = CallingHours(weekdays=[1], skip_dates=mondays)
    assert next_window_start(utc(2026, 1, 1), hours) == local(KYIV, 2027, 1, 4, 9)


def test_a_holiday_in_either_zone_closes_the_overlap() -> None:
    zones = ["Pacific/Guam", "Pacific/Honolulu"]
    # Monday 19 January 13:00 in Honolulu is Tuesday 20 January 09:00 in Guam.
    holiday = CallingHours(skip_dates=[date(2026, 1, 20)])
    # Closed in Guam that night, then in Honolulu the next: Wednesday in Honolulu.
    assert next_window_start_in(utc(2026, 1, 19, 20), holiday, zones) == utc(2026, 1, 21, 23)
    kyiv_and_vladivostok = CallingHours(skip_dates=[date(2026, 1, 22)])
    opens = next_window_start_in(local(KYIV, 2026, 1, 21, 12), kyiv_and_vladivostok, [KYIV, VLADIVOSTOK])
    assert opens == utc(2026, 1, 23, 7)


def test_the_search_ends_past_the_last_skip_date() -> None:
    # Kyiv and Honolulu never overlap: the error says how far it looked.
    hours = CallingHours(skip_dates=[date(2026, 3, 1)])
    with pytest.raises(ValueError, match=f"to {date(2026, 3, 1) + timedelta(days=SEARCH_DAYS)}"):
        next_window_start_in(utc(2026, 1, 21), hours, [KYIV, "Pacific/Honolulu"])


# Properties -------------------------------------------------------------------------------------


def old_next_window_start(now: datetime, hours: CallingHours | None) -> datetime:
    """`next_window_start` as it was before zones and skip dates, for comparison."""
    if hours is None:
        return now
    zone = ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    start, end = time.fromisoformat(hours.start), time.fromisoformat(hours.end)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.isoweekday() not in hours.weekdays:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day, end, tzinfo=zone)
        if offset == 0 and opens <= local < closes:
            return now
        if local < opens:
            return opens.astimezone(UTC)
    raise AssertionError("a week always has an allowed day")


# Zones with clock changes at 00:00, 01:00 UTC, 02:00, 02:45, 03:00 local, half and quarter hours.
ZONES = [
    "Europe/Kyiv",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Havana",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "Asia/Vladivostok",
    "Pacific/Honolulu",
    "UTC",
]
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
hh_mm = st.tuples(st.integers(0, 23), st.integers(0, 59))


@st.composite
def calling_hours(draw: st.DrawFn, zone: str, earliest_start: int = 0, step: int = 1) -> CallingHours:
    minutes = st.integers(earliest_start * 60 // step, 24 * 60 // step - 1).map(lambda m: m * step)
    start, end = sorted(draw(st.lists(minutes, min_size=2, max_size=2, unique=True)))
    weekdays = draw(st.lists(st.integers(1, 7), min_size=1, max_size=7))
    return CallingHours(
        timezone=zone,
        start=f"{start // 60:02}:{start % 60:02}",
        end=f"{end // 60:02}:{end % 60:02}",
        weekdays=weekdays,
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), now=moments, zone=st.sampled_from(ZONES))
def test_next_window_start_answers_as_it_always_has(data: st.DataObject, now: datetime, zone: str) -> None:
    hours = data.draw(calling_hours(zone))
    old = old_next_window_start(now, hours)
    new = next_window_start(now, hours)
    # The same moment, except that one never before `now` (an opening in an hour repeated in
    # autumn read as its first occurrence could be): the callers took that as "open now" anyway.
    assert new == max(now, old)
    assert new == next_window_start_in(now, hours, [zone])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    now=moments.map(lambda m: m.replace(minute=m.minute // 15 * 15, second=0, microsecond=0)),
    # Not Santiago: it repeats 23:00–24:00 in autumn, where a window may end.
    zones=st.lists(
        st.sampled_from([z for z in ZONES if z != "America/Santiago"]), min_size=1, max_size=3, unique=True
    ),
    skips=st.lists(st.integers(0, 20), max_size=4),
)
def test_the_overlap_is_the_first_quarter_hour_open_in_every_zone(
    data: st.DataObject, now: datetime, zones: list[str], skips: list[int]
) -> None:
    # Windows from 04:00 on (no clock change falls inside one here) on quarter hours, as every
    # offset is: then the first moment open in every zone is one of the quarter hours.
    drawn = data.draw(calling_hours("UTC", earliest_start=4, step=15))
    hours = drawn.model_copy(update={"skip_dates": [now.date() + timedelta(days=n) for n in skips]})
    last_day = max([now.date(), *hours.skip_dates]) + timedelta(days=SEARCH_DAYS)
    expected = None
    moment = now
    while moment.date() <= last_day + timedelta(days=1):
        if is_open(moment, hours, zones):
            expected = moment
            break
        moment += timedelta(minutes=15)
    if expected is not None and expected.date() < last_day:
        assert next_window_start_in(now, hours, zones) == expected
    elif expected is None:
        with pytest.raises(ValueError):
            next_window_start_in(now, hours, zones)
    # else: an overlap only at the very end of the search (zones meeting only after a clock
    # change there) may or may not be found.


def test_the_agent_tells_the_date_in_the_callees_zone_only_when_it_is_one() -> None:
    hours = CallingHours(timezone="recipient")
    assert spoken_zone(hours, "+81312345678", {}) == "Asia/Tokyo"
    assert spoken_zone(hours, "+380994829573", {}) == "Europe/Kyiv"
    assert spoken_zone(hours, "+79161234567", {}) is None  # 16 zones: the integration's is told
    assert spoken_zone(hours, "+79161234567", {"timezone": "Asia/Vladivostok"}) == "Asia/Vladivostok"
    assert spoken_zone(hours, "+79161234567", {"timezone": "Mars/Olympus"}) is None
    assert spoken_zone(CallingHours(timezone="Europe/Warsaw"), "+81312345678", {}) is None
    assert spoken_zone(None, "+81312345678", {}) is None
    assert spoken_zone(hours, None, {}) is None
