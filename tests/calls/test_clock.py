"""The calling window and the agent's date (`happ_integ.calls.clock`)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from happ_integ.calls.clock import next_window_start, spoken_date
from happ_integ.calls.config import CallingHours

KYIV = ZoneInfo("Europe/Kyiv")
HOURS = CallingHours(timezone="Europe/Kyiv", start="09:00", end="20:00", weekdays=[1, 2, 3, 4, 5, 6])


def kyiv(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=KYIV)


def test_inside_the_window_the_call_goes_now() -> None:
    now = kyiv(2026, 1, 21, 14, 39)  # a Wednesday
    assert next_window_start(now, HOURS) == now
    assert next_window_start(kyiv(2026, 1, 21, 9, 0), HOURS) == kyiv(2026, 1, 21, 9, 0)


def test_before_the_window_opens_the_call_waits_for_it_the_same_day() -> None:
    opens = next_window_start(kyiv(2026, 1, 21, 7, 30), HOURS)
    assert opens == kyiv(2026, 1, 21, 9, 0) and opens.tzinfo == UTC


def test_at_closing_time_and_after_the_call_waits_for_the_next_allowed_day() -> None:
    assert next_window_start(kyiv(2026, 1, 21, 20, 0), HOURS) == kyiv(2026, 1, 22, 9, 0)
    # Saturday night: Sunday is not allowed, so Monday morning.
    assert next_window_start(kyiv(2026, 1, 24, 22, 0), HOURS) == kyiv(2026, 1, 26, 9, 0)


def test_the_window_is_the_zones_local_time_across_a_clock_change() -> None:
    # Kyiv moves to summer time on the last Sunday of March (29 March 2026): 09:00 is then UTC+3.
    opens = next_window_start(kyiv(2026, 3, 28, 21, 0), CallingHours(weekdays=[7]))
    assert opens == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_without_calling_hours_any_time_will_do() -> None:
    now = datetime(2026, 1, 25, 3, 0, tzinfo=UTC)
    assert next_window_start(now, None) == now


def test_the_agent_is_told_the_date_time_and_weekday_in_its_zone() -> None:
    now = datetime(2026, 1, 21, 12, 39, 12, tzinfo=UTC)
    assert spoken_date(now, "Europe/Kyiv") == {
        "today_is": "21.01.2026",
        "time": "14:39:12",
        "weekday": "Середа",
    }
    assert spoken_date(datetime(2026, 1, 25, 23, 30, tzinfo=UTC), "Europe/Kyiv")["weekday"] == "Понеділок"
