"""Which zones a call's window is read in: from the config, the recipient, the number
(`happ_integ.calls.zones`, `happ_integ.calls.clock.zones_for`), and the calling_hours fields
that choose them."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from happ_integ.calls.clock import ZonesUsed, zones_for
from happ_integ.calls.config import DEFAULT_TIMEZONE, CallHandling, CallingHours
from happ_integ.calls.zones import is_zone, zones_for_number

RECIPIENT = CallingHours(timezone="recipient")
RUSSIAN_MOBILE = "+79161234567"
US_TOLL_FREE = "+18005551234"


def test_a_ukrainian_number_is_in_kyiv() -> None:
    assert zones_for_number("+380994829573") == ["Europe/Kyiv"]
    assert zones_for_number("+12125551234") == ["America/New_York"]


def test_a_russian_mobile_and_a_us_toll_free_number_are_in_many_zones() -> None:
    russian = zones_for_number(RUSSIAN_MOBILE)
    assert len(russian) > 10 and {"Europe/Moscow", "Asia/Vladivostok", "Asia/Anadyr"} <= set(russian)
    toll_free = zones_for_number(US_TOLL_FREE)
    assert len(toll_free) > 30 and {"America/New_York", "Pacific/Honolulu", "Pacific/Guam"} <= set(toll_free)
    for zones in (russian, toll_free):
        assert zones == sorted(set(zones)) and all(is_zone(zone) for zone in zones)


@pytest.mark.parametrize(
    "number",
    [
        "+80012345678",  # international freephone: valid, but in no zone (phonenumbers: Etc/Unknown)
        "+3800000000",  # a range Ukraine never gave out
        "+883123456789",
        "+99912345",  # no such country code
        "0994829573",  # not E.164
        "",
        "not a number",
    ],
)
def test_a_number_in_no_known_zone_has_none(number: str) -> None:
    assert zones_for_number(number) == []


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("Europe/Kyiv", True),
        ("UTC", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Etc/Unknown", False),
        ("recipient", False),
        ("America", False),  # a directory of the zone database
        ("Europe/", False),
        ("../etc/passwd", False),
        ("utc", False),
        ("x\x00", False),
        ("a" * 300, False),
        ("", False),
        (None, False),
        (["Europe/Kyiv"], False),
    ],
)
def test_is_zone_names_only_real_zones_and_never_raises(name: object, known: bool) -> None:
    assert is_zone(name) is known


# zones_for --------------------------------------------------------------------------------------


def test_a_zone_in_the_config_is_the_only_one_whoever_is_called() -> None:
    hours = CallingHours(timezone="Europe/Warsaw")
    used = zones_for(hours, phone=RUSSIAN_MOBILE, recipient_zone="Asia/Tokyo")
    assert used == ZonesUsed(zones=["Europe/Warsaw"], source="config", ambiguous=False)
    assert zones_for(CallingHours(), "+12125551234").zones == [DEFAULT_TIMEZONE]


def test_recipient_hours_follow_the_number() -> None:
    assert zones_for(RECIPIENT, "+12125551234") == ZonesUsed(zones=["America/New_York"], source="number")
    many = zones_for(RECIPIENT, RUSSIAN_MOBILE)
    assert many.source == "number" and many.ambiguous and many.zones == zones_for_number(RUSSIAN_MOBILE)
    assert many.summary.startswith(f"{len(many.zones)} zones (number), open in all: Asia/")


def test_the_recipients_own_zone_wins_over_the_number() -> None:
    used = zones_for(RECIPIENT, RUSSIAN_MOBILE, recipient_zone="Asia/Vladivostok")
    assert used == ZonesUsed(zones=["Asia/Vladivostok"], source="recipient", ambiguous=False)
    assert used.summary == "Asia/Vladivostok (recipient)"
    several = zones_for(
        RECIPIENT, "+380994829573", recipient_zone=["Europe/Kyiv", "Asia/Tokyo", "Asia/Tokyo"]
    )
    assert several == ZonesUsed(zones=["Asia/Tokyo", "Europe/Kyiv"], source="recipient", ambiguous=True)
    # An empty one is no zone: the number decides.
    assert zones_for(RECIPIENT, "+380994829573", recipient_zone="").source == "number"
    assert zones_for(RECIPIENT, "+380994829573", recipient_zone=[]).source == "number"


def test_a_recipient_zone_that_is_no_zone_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus'"):
        zones_for(RECIPIENT, "+380994829573", recipient_zone=["Europe/Kyiv", "Mars/Olympus"])


def test_a_number_in_no_known_zone_falls_back() -> None:
    assert zones_for(RECIPIENT, "+80012345678") == ZonesUsed(zones=[DEFAULT_TIMEZONE], source="fallback")
    hours = CallingHours(timezone="recipient", fallback_timezone="Europe/Warsaw")
    assert zones_for(hours, "+80012345678") == ZonesUsed(zones=["Europe/Warsaw"], source="fallback")
    assert zones_for(hours) == ZonesUsed(zones=["Europe/Warsaw"], source="fallback")  # no number at all


def test_without_calling_hours_the_zone_is_the_default_one() -> None:
    assert zones_for(None, RUSSIAN_MOBILE) == ZonesUsed(zones=[DEFAULT_TIMEZONE], source="config")


# The calling_hours fields ----------------------------------------------------------------------


def test_timezone_is_a_zone_or_recipient() -> None:
    assert CallingHours(timezone="recipient").timezone == "recipient"
    for bad in ("Mars/Olympus", "America", "Recipient", "", "Etc/Unknown"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            CallingHours(timezone=bad)


def test_the_fallback_is_a_real_zone() -> None:
    assert CallingHours().fallback_timezone == DEFAULT_TIMEZONE
    for bad in ("recipient", "Mars/Olympus", "Europe"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            CallingHours(timezone="recipient", fallback_timezone=bad)


def test_the_agents_zone_is_the_fallback_for_recipient_hours() -> None:
    assert CallHandling(calling_hours=RECIPIENT).timezone == DEFAULT_TIMEZONE
    hours = CallingHours(timezone="recipient", fallback_timezone="Europe/Warsaw")
    assert CallHandling(calling_hours=hours).timezone == "Europe/Warsaw"
    assert CallHandling(calling_hours=CallingHours(timezone="Asia/Tokyo")).timezone == "Asia/Tokyo"
    assert CallHandling(calling_hours=None).timezone == DEFAULT_TIMEZONE


def test_skip_dates_are_iso_dates_sorted_once_each() -> None:
    hours = CallingHours(skip_dates=["2026-05-01", "2026-01-07", date(2026, 1, 1), "2026-01-07"])  # type: ignore[list-item]
    assert hours.skip_dates == [date(2026, 1, 1), date(2026, 1, 7), date(2026, 5, 1)]
    assert hours.model_dump(mode="json")["skip_dates"] == ["2026-01-01", "2026-01-07", "2026-05-01"]


@pytest.mark.parametrize(
    "bad",
    ["2026-13-01", "2026-02-30", "01.01.2026", "2026-1-7", "2026-01-01T00:00:00", 20260101, 1767225600, None],
)
def test_a_skip_date_that_is_not_an_iso_date_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError, match="skip_dates"):
        CallingHours(skip_dates=[bad])  # type: ignore[list-item]


def test_skip_dates_hold_a_year_at_most() -> None:
    year = [date.fromordinal(date(2026, 1, 1).toordinal() + n) for n in range(366)]
    assert len(CallingHours(skip_dates=year).skip_dates) == 366
    with pytest.raises(ValidationError, match="skip_dates"):
        CallingHours(skip_dates=[*year, date(2027, 1, 2)])


def test_the_new_fields_at_their_defaults_leave_the_stored_config_as_it_was() -> None:
    # Configs and workflow histories written before these fields existed read and write the same.
    before = {"timezone": "Europe/Kyiv", "start": "09:00", "end": "20:00", "weekdays": [1, 2, 3, 4, 5, 6]}
    assert CallingHours().model_dump() == before
    assert CallingHours.model_validate(before).model_dump(mode="json") == before
    assert CallHandling().model_dump(mode="json")["calling_hours"] == before
    used = CallingHours(timezone="recipient", fallback_timezone="UTC", skip_dates=[date(2026, 1, 1)])
    dumped = used.model_dump(mode="json")
    assert dumped["fallback_timezone"] == "UTC" and dumped["skip_dates"] == ["2026-01-01"]
    assert CallingHours.model_validate(dumped) == used
