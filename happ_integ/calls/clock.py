"""Time rules of a call: the calling window, the zones it is read in, and the date and time an
agent is told.

    next_window_start(now, hours)       # `now` when inside the window, else when it next opens
    used = zones_for(hours, phone="+79161234567")       # which zones apply, and why
    next_window_start_in(now, hours, used.zones)        # ... open in every one of them at once
    spoken_date(now, "Europe/Kyiv")     # {"today_is": "21.01.2026", "time": "14:39:12", "weekday": "Середа"}

Pure functions of their arguments, so workflow code may call them with `workflow.now()`.

The window, in each zone: a local date that is one of `weekdays` and not one of `skip_dates`, from
`start` to `end` by the zone's wall clock. So on the day the clocks change it is still 09:00–20:00
local (09:00 in Kyiv is 07:00 UTC in winter, 06:00 UTC in summer). A start that does not exist
that day (it falls in the hour skipped when the clocks go forward, e.g. 02:30 in New York on
8 March 2026) is read as `zoneinfo` reads it, with the offset from before the change: a call
waiting for the window is woken one hour later on the wall clock (03:30 EDT); asked in between
(03:00–03:30 EDT, whose local time is past 02:30) the window counts as open. A start in the hour
repeated when the clocks go back is its first occurrence; asked during the repeat, the window
counts as open; an end in that hour closes it at its first occurrence (a moment asked during the
repeat is still judged by its wall clock). Windows never cross local midnight (`end` is after
`start`). Outside those hours (most zones change between 00:00 and 04:00) nothing is special.

Several zones (a number that maps to many, `zones_for`): a moment is in the window when it is in
every zone's window; a date in `skip_dates` closes that local date in each zone. The overlap can be
narrow (Europe/Kyiv and Asia/Vladivostok, both 09:00–20:00: 09:00–12:00 in Kyiv in winter) or empty: then
the following days are searched, `SEARCH_DAYS` past the later of `now` and the last skip date, and
a window that never opens in all of them at once is a ValueError naming the zones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from happ_integ.calls.config import DEFAULT_TIMEZONE, RECIPIENT, CallingHours
from happ_integ.calls.zones import is_zone, zones_for_number

# Monday first, as `date.isoweekday()` counts (1 = Monday): how the agent names the day.
WEEKDAYS_UK = ("Понеділок", "Вівторок", "Середа", "Четвер", "П'ятниця", "Субота", "Неділя")

# How far past `now` (or the last skip date, if later) a window open in all zones is looked for.
SEARCH_DAYS = 14


class ZonesUsed(BaseModel):
    """The zones a call's window is read in, and where they came from.

    `source`: "config" (calling_hours.timezone is a zone), "recipient" (the zone the caller gave
    for the recipient), "number" (from the number's prefix), "fallback" (timezone "recipient", but
    no zone is known: calling_hours.fallback_timezone). `ambiguous`: more than one zone, so the
    window is the overlap of all of them."""

    model_config = ConfigDict(frozen=True)

    zones: list[str]
    source: Literal["config", "number", "recipient", "fallback"]
    ambiguous: bool = False

    @property
    def summary(self) -> str:
        """For a status reason or a log line: "Europe/Kyiv (number)", "16 zones (number): Asia/…"."""
        if len(self.zones) == 1:
            return f"{self.zones[0]} ({self.source})"
        return f"{len(self.zones)} zones ({self.source}), open in all: {', '.join(self.zones)}"


def zones_for(
    hours: CallingHours | None,
    phone: str | None = None,
    recipient_zone: str | Sequence[str] | None = None,
) -> ZonesUsed:
    """Which zones `hours` are read in for a call to `phone` (E.164).

    A zone in `hours.timezone` is the only one ("config"), whoever is called. With "recipient":
    the recipient's own zone or zones when the caller gave them (`recipient_zone`, winning over
    the number), else the zones of the number (`zones_for_number`), else `fallback_timezone`.
    Without calling hours (any time): Europe/Kyiv, as `CallHandling.timezone` says.
    A `recipient_zone` that is not an IANA name is a ValueError (check input with `zones.is_zone`)."""
    if hours is None:
        return ZonesUsed(zones=[DEFAULT_TIMEZONE], source="config")
    if hours.timezone != RECIPIENT:
        return ZonesUsed(zones=[hours.timezone], source="config")
    given = [recipient_zone] if isinstance(recipient_zone, str) else list(recipient_zone or [])
    given = [zone for zone in given if zone]
    if given:
        zones = _checked(given)
        return ZonesUsed(zones=zones, source="recipient", ambiguous=len(zones) > 1)
    found = zones_for_number(phone) if phone else []
    if found:
        return ZonesUsed(zones=found, source="number", ambiguous=len(found) > 1)
    return ZonesUsed(zones=[hours.fallback_timezone], source="fallback")


def callee_zones(hours: CallingHours | None, phone: str, variables: Mapping[str, Any]) -> ZonesUsed:
    """The zones a call to `phone` reads its window in, as the call and a campaign's dry run both
    read them: the recipient's own `timezone` variable over the number's zones; a variable that
    names no zone is ignored."""
    given = variables.get("timezone")
    try:
        return zones_for(hours, phone, given if isinstance(given, str) else None)
    except ValueError:
        return zones_for(hours, phone)


def spoken_zone(hours: CallingHours | None, phone: str | None, variables: Mapping[str, Any]) -> str | None:
    """The zone the agent tells the date and time in for a call to `phone`: with
    `calling_hours.timezone: "recipient"`, the callee's own zone when exactly one is known (their
    `timezone` variable, else the number's); None otherwise (the integration's zone is told)."""
    if hours is None or hours.timezone != RECIPIENT or not phone:
        return None
    used = callee_zones(hours, phone, variables)
    return used.zones[0] if used.source in ("recipient", "number") and len(used.zones) == 1 else None


def next_window_start(now: datetime, hours: CallingHours | None) -> datetime:
    """The first moment at or after `now` (aware) inside the calling window, in UTC (`now`
    itself when it is inside). The window is read in `hours.timezone` (its `fallback_timezone`
    when that is "recipient": `next_window_start_in` takes the callee's zones)."""
    if hours is None:
        return now
    return next_window_start_in(now, hours, [hours.config_zone])


def next_window_start_in(
    now: datetime, hours: CallingHours | None, zones: ZonesUsed | str | Sequence[str]
) -> datetime:
    """The first moment at or after `now` (aware) when the calling window is open in every one of
    `zones` at once: `now` itself when it is, else a moment in UTC. `hours.timezone` is not read:
    the zones are the argument (`zones_for`). ValueError when no such moment comes within
    `SEARCH_DAYS` days past `now` (or past the last of `hours.skip_dates`), or for no zone or an
    unknown one."""
    if hours is None:
        return now
    names = zones.zones if isinstance(zones, ZonesUsed) else [zones] if isinstance(zones, str) else zones
    if not names:
        raise ValueError("no time zone to read the calling window in")
    checked = _checked(names)
    window = _Window(hours)
    last_day = max([now.astimezone(UTC).date(), *hours.skip_dates]) + timedelta(days=SEARCH_DAYS)
    tzs = [ZoneInfo(name) for name in checked]

    def never() -> ValueError:
        return ValueError(
            f"the calling window {hours.start}–{hours.end} (weekdays {hours.weekdays}"
            f"{', skip_dates' if hours.skip_dates else ''}) is not open in all of "
            f"{', '.join(checked)} at once at any time from {now.isoformat()} to {last_day}"
        )

    if len(tzs) == 1:
        # One zone: its next opening, exactly as `next_window_start` has always answered.
        opens = window.next_open(now, tzs[0], last_day)
        if opens is None:
            raise never()
        return opens
    moment = now
    while True:
        # Each zone's next opening at or after `moment`: the latest of them is the earliest the
        # overlap can begin; when every zone is open at `moment` it has begun. `moment` only
        # grows, from one zone's opening to another's, so this ends by `last_day`.
        latest = moment
        for tz in tzs:
            opens = window.next_open(moment, tz, last_day)
            if opens is None:
                raise never()
            latest = max(latest, opens)
        if latest == moment:
            return moment
        moment = latest


class _Window:
    """`hours` in one zone: its next opening, as `next_window_start` has always found it."""

    def __init__(self, hours: CallingHours) -> None:
        self.start, self.end = _hhmm(hours.start), _hhmm(hours.end)
        self.weekdays = frozenset(hours.weekdays)
        self.skipped = frozenset(hours.skip_dates)

    def next_open(self, now: datetime, zone: ZoneInfo, last_day: date) -> datetime | None:
        """`now` inside the window; else its next opening (never before `now`); None when none
        comes by `last_day`. Local times compare as the wall clock reads them (the same zone)."""
        local = now.astimezone(zone)
        day = local.date()
        first = True
        while day <= last_day:
            if day.isoweekday() in self.weekdays and day not in self.skipped:
                opens = datetime.combine(day, self.start, tzinfo=zone)
                closes = datetime.combine(day, self.end, tzinfo=zone)
                if first and opens <= local < closes:
                    return now
                if local < opens:
                    # An opening in the hour repeated in autumn, read as its first occurrence, can
                    # be behind `now` (asked during the repeat): open now.
                    return max(now, opens.astimezone(UTC))
            day += timedelta(days=1)
            first = False
        return None


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _checked(names: Sequence[str]) -> list[str]:
    """Sorted, without repeats; ValueError naming an unknown zone."""
    unknown = [name for name in names if not is_zone(name)]
    if unknown:
        raise ValueError(f"unknown time zone {unknown[0]!r} (use an IANA name such as Europe/Kyiv)")
    return sorted(set(names))


def spoken_date(now: datetime, timezone: str) -> dict[str, str]:
    """`today_is` (dd.mm.yyyy), `time` (HH:MM:SS) and the Ukrainian `weekday`, in `timezone`."""
    local = now.astimezone(ZoneInfo(timezone))
    return {
        "today_is": local.strftime("%d.%m.%Y"),
        "time": local.strftime("%H:%M:%S"),
        "weekday": WEEKDAYS_UK[local.isoweekday() - 1],
    }
