"""Time rules of a call: the calling window, and the date and time an agent is told.

    next_window_start(now, hours)       # `now` when inside the window, else when it next opens
    spoken_date(now, "Europe/Kyiv")     # {"today_is": "21.01.2026", "time": "14:39:12", "weekday": "Середа"}

Pure functions of their arguments, so workflow code may call them with `workflow.now()`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from happ_integ.calls.config import CallingHours

# Monday first, as `date.isoweekday()` counts (1 = Monday): how the agent names the day.
WEEKDAYS_UK = ("Понеділок", "Вівторок", "Середа", "Четвер", "П'ятниця", "Субота", "Неділя")


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_window_start(now: datetime, hours: CallingHours | None) -> datetime:
    """The first moment at or after `now` (aware) inside the calling window, in UTC."""
    if hours is None:
        return now
    zone = ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    start, end = _hhmm(hours.start), _hhmm(hours.end)
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
    raise AssertionError("a week always has an allowed day")  # weekdays is never empty


def spoken_date(now: datetime, timezone: str) -> dict[str, str]:
    """`today_is` (dd.mm.yyyy), `time` (HH:MM:SS) and the Ukrainian `weekday`, in `timezone`."""
    local = now.astimezone(ZoneInfo(timezone))
    return {
        "today_is": local.strftime("%d.%m.%Y"),
        "time": local.strftime("%H:%M:%S"),
        "weekday": WEEKDAYS_UK[local.isoweekday() - 1],
    }
