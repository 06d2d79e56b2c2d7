"""Time zones: which names are real IANA zones, and which zones a phone number is in.

    zones_for_number("+380994829573")   # ["Europe/Kyiv"]
    zones_for_number("+79161234567")    # 16 zones, Europe/Bucharest … Asia/Anadyr: a Russian mobile
                                        # is not tied to a region
    zones_for_number("+18005551234")    # 42 zones: a US toll-free number
    zones_for_number("+80012345678")    # []: phonenumbers knows no zone ("Etc/Unknown")
    is_zone("Europe/Kyiv"), is_zone("recipient")   # True, False

The zones come from `phonenumbers`' geocoding data (`phonenumbers.timezone`), offline and pure,
so workflow code may call these functions. `calling_hours.timezone: "recipient"` uses them
(`happ_integ.calls.clock.zones_for`).
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

# What phonenumbers answers for a number it cannot place.
UNKNOWN_ZONE = "Etc/Unknown"


def is_zone(name: object) -> bool:
    """True for a time zone name `zoneinfo` knows (an IANA name such as Europe/Kyiv, or UTC).

    Never raises: a directory ("America"), a path, an empty or overlong string, a non-string are
    all False."""
    if not isinstance(name, str) or not name or len(name) > 64 or name == UNKNOWN_ZONE:
        return False
    return _loads(name)


@lru_cache(maxsize=4096)
def _loads(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError, IsADirectoryError, OSError, …
        return False
    return True


def zones_for_number(e164: str) -> list[str]:
    """The IANA zones the number `e164` ("+380…") may be in, sorted; [] when none is known (a number
    phonenumbers cannot parse or place, a non-geographic range such as +800)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return []
    return sorted({zone for zone in number_zones.time_zones_for_number(number) if is_zone(zone)})
