"""How an integration's outbound calls behave: the `call_handling` config.

    handling = await ctx.config.get("call_handling", CallHandling)
    handling.retry_delay(attempt=1)            # 600: seconds to wait after the first failed attempt
    handling.retry_delay(1, Outcome.BUSY)      # the same, or `retry_delays_seconds["busy"]` if set
    handling.max_attempts_for(Outcome.BUSY)    # 3, or `max_attempts["busy"]` if set

Every field has a default, so `PUT /{integration}/config/call_handling {"concurrency_limit": 5}`
changes one thing and keeps the rest.

Retries per outcome: `max_attempts` and `retry_delays_seconds` are either one value for every
outcome (`3`, `[600, 1800, 3600]`) or a mapping by the outcome of the attempt that just ended
(`{"busy": [300], "no_answer": [1800, 3600], "default": [600]}`). The keys are the attempt
outcomes that are retried (`RETRY_OUTCOMES`: short, no_answer, busy, failed, ring_timeout,
originate_failed), `voicemail` (the analysis of an answered call says it reached a voicemail) and
`default`. An outcome the mapping does not name takes `default`, or without one the built-in
default (3 attempts; 600, 1800, 3600 s). Attempts are counted over the whole call whatever their
outcomes: after attempt N ended as `busy`, the call is exhausted when N >= max_attempts for busy,
else it waits delay N of the busy list (its last delay repeating).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from happ_integ.calls.models import Outcome
from happ_integ.calls.zones import is_zone

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DEFAULT_TIMEZONE = "Europe/Kyiv"
# `calling_hours.timezone` for "the callee's own time zone, from the number".
RECIPIENT = "recipient"

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_DELAYS: tuple[int, ...] = (600, 1800, 3600)
MAX_ATTEMPTS_LIMIT = 20
MAX_DELAYS = 20
MAX_DELAY_SECONDS = 7 * 24 * 3600

# The outcomes a retry rule may name: every attempt outcome but `answered`, and the analysis
# outcome `voicemail` (an answered call that reached a voicemail).
RETRY_OUTCOMES: tuple[str, ...] = (
    *(outcome.value for outcome in Outcome if outcome is not Outcome.ANSWERED),
    "voicemail",
)
DEFAULT_KEY = "default"
RULE_KEYS: tuple[str, ...] = (*RETRY_OUTCOMES, DEFAULT_KEY)

# For the JSON schema only (`RULE_KEYS` is checked at import by tests/calls/test_retry_rules.py).
RuleKey = Literal[
    "short", "no_answer", "busy", "failed", "ring_timeout", "originate_failed", "voicemail", "default"
]
_Count = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT)]
_Delays = Annotated[
    list[Annotated[int, Field(ge=0, le=MAX_DELAY_SECONDS)]], Field(min_length=1, max_length=MAX_DELAYS)
]
_INT: TypeAdapter[int] = TypeAdapter(int)
_INTS: TypeAdapter[list[int]] = TypeAdapter(list[int])


class CallingHours(BaseModel):
    """When calls may be placed: local `start`–`end` on ISO weekdays (1 = Monday … 7 = Sunday),
    except the `skip_dates`, in `timezone` or, with `"recipient"`, in the callee's own zone.

    The window is read in each zone's wall-clock time, day by day (`happ_integ.calls.clock`)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description=(
            'an IANA zone (Europe/Kyiv), or "recipient": the callee\'s own zone, from the number '
            "(a number in several zones: the window must be open in all of them; in none: fallback_timezone)"
        ),
    )
    start: str = Field(default="09:00", description="HH:MM, local time")
    end: str = Field(default="20:00", description="HH:MM, local time, after start")
    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6], min_length=1, max_length=7)
    # Left out of a dump while at their defaults, so a config or history written before they
    # existed reads and writes exactly as it did.
    fallback_timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description='with timezone "recipient": the zone of a number that has no known zone',
        exclude_if=lambda value: value == DEFAULT_TIMEZONE,
    )
    skip_dates: list[date] = Field(
        default_factory=list,
        max_length=366,
        description="ISO dates (YYYY-MM-DD) closed all day, e.g. public holidays, in each zone that applies",
        exclude_if=lambda value: not value,
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != RECIPIENT and not is_zone(value):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Kyiv, "
                f'or "recipient" for the callee\'s own zone)'
            )
        return value

    @field_validator("fallback_timezone")
    @classmethod
    def _known_fallback(cls, value: str) -> str:
        if not is_zone(value):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Kyiv)")
        return value

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("use HH:MM, 24-hour (e.g. 09:00)")
        return value

    @field_validator("weekdays")
    @classmethod
    def _iso_days(cls, value: list[int]) -> list[int]:
        if any(day not in range(1, 8) for day in value):
            raise ValueError("weekdays are ISO numbers: 1 = Monday … 7 = Sunday")
        return sorted(set(value))

    @field_validator("skip_dates", mode="before")
    @classmethod
    def _iso_dates(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for item in value:
                plain_date = isinstance(item, date) and not isinstance(item, datetime)
                if not plain_date and not (isinstance(item, str) and _ISO_DATE.match(item)):
                    raise ValueError(f"skip_dates are ISO dates (YYYY-MM-DD, e.g. 2026-01-01), not {item!r}")
        return value

    @field_validator("skip_dates")
    @classmethod
    def _sorted_dates(cls, value: list[date]) -> list[date]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _ordered(self) -> CallingHours:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def config_zone(self) -> str:
        """The zone when no callee is known: `timezone`, or `fallback_timezone` for "recipient"."""
        return self.fallback_timezone if self.timezone == RECIPIENT else self.timezone


class CallHandling(BaseModel):
    """The `call_handling` config of an integration with a call flow."""

    model_config = ConfigDict(extra="forbid")

    concurrency_limit: int = Field(default=3, ge=1, le=1000, description="calls dialing or talking at once")
    short_call_seconds: int = Field(default=5, ge=0, le=3600, description="a shorter call is retried")
    max_attempts: int | dict[str, int] = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        description=(
            "attempts in all, then the call is exhausted; or a mapping by the last attempt's outcome "
            '({"busy": 5, "default": 3}; keys: ' + ", ".join(RULE_KEYS) + ")"
        ),
    )
    retry_delays_seconds: list[int] | dict[str, list[int]] = Field(
        default=list(DEFAULT_RETRY_DELAYS),
        description=(
            "after attempt N; the last repeats. Or a mapping by the attempt's outcome "
            '({"busy": [300], "no_answer": [1800, 3600], "default": [600]}; keys: '
            + ", ".join(RULE_KEYS)
            + '; "voicemail", when the analysis says the call reached a voicemail, is the only rule '
            "that retries an answered call)"
        ),
    )
    ring_timeout_seconds: int = Field(default=60, ge=5, le=600, description="originate → call_start")
    max_call_seconds: int = Field(default=3600, ge=10, le=4 * 3600, description="call_start → call_end")
    postcall_timeout_seconds: int = Field(
        default=1800, ge=10, le=24 * 3600, description="then the conversation is read from ElevenLabs"
    )
    calling_hours: CallingHours | None = Field(default_factory=CallingHours, description="null: any time")
    default_region: str = Field(default="UA", description="for numbers written without a country code")
    provider: Literal["happ_voice", "elevenlabs_sip", "elevenlabs_twilio"] = Field(
        default="happ_voice",
        description="who dials: the voice assistant SaaS, or ElevenLabs over SIP or Twilio",
    )

    @field_validator("max_attempts", mode="plain", json_schema_input_type=_Count | dict[RuleKey, _Count])
    @classmethod
    def _max_attempts(cls, value: Any) -> int | dict[str, int]:
        if isinstance(value, Mapping):
            return {key: _count(item, f"max_attempts.{key}") for key, item in _rules(value, "max_attempts")}
        return _count(value, "max_attempts")

    @field_validator(
        "retry_delays_seconds", mode="plain", json_schema_input_type=_Delays | dict[RuleKey, _Delays]
    )
    @classmethod
    def _delays(cls, value: Any) -> list[int] | dict[str, list[int]]:
        if isinstance(value, Mapping):
            return {
                key: _delay_list(item, f"retry_delays_seconds.{key}")
                for key, item in _rules(value, "retry_delays_seconds")
            }
        return _delay_list(value, "retry_delays_seconds")

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (an ISO 3166 code such as UA)")
        return value.upper()

    # Retry rules ------------------------------------------------------------------------------

    def with_overrides(self, overrides: Mapping[str, Any]) -> CallHandling:
        """These options with some replaced (a campaign's calling hours, attempts, delays),
        validated as `call_handling` is."""
        if not overrides:
            return self
        return CallHandling.model_validate({**self.model_dump(), **overrides})

    def retry_delays_for(self, outcome: str | None = None) -> tuple[list[int], str]:
        """The delays that apply after an attempt that ended as `outcome`, and the rule they come
        from: "retry_delays_seconds" (one list for every outcome), "retry_delays_seconds.busy",
        "retry_delays_seconds.default", or "retry_delays_seconds (built-in default)" for an
        outcome a mapping does not name, without a "default"."""
        rule = self.retry_delays_seconds
        if not isinstance(rule, dict):
            return rule, "retry_delays_seconds"
        key = _key(rule, outcome)
        if key is None:
            return list(DEFAULT_RETRY_DELAYS), "retry_delays_seconds (built-in default)"
        return rule[key], f"retry_delays_seconds.{key}"

    def retry_delay(self, attempt: int, outcome: str | None = None) -> int:
        """Seconds to wait after attempt number `attempt` (1-based) failed as `outcome` (None: the
        rule for every outcome, or `default`); the last delay repeats."""
        delays, _ = self.retry_delays_for(outcome)
        return delays[min(attempt, len(delays)) - 1]

    def max_attempts_rule(self, outcome: str | None = None) -> tuple[int, str]:
        """How many attempts a call whose last attempt ended as `outcome` may have, and the rule:
        "max_attempts", "max_attempts.busy", "max_attempts.default" or "max_attempts (built-in
        default)"."""
        rule = self.max_attempts
        if not isinstance(rule, dict):
            return rule, "max_attempts"
        key = _key(rule, outcome)
        if key is None:
            return DEFAULT_MAX_ATTEMPTS, "max_attempts (built-in default)"
        return rule[key], f"max_attempts.{key}"

    def max_attempts_for(self, outcome: str | None = None) -> int:
        """`max_attempts` for a call whose last attempt ended as `outcome` (attempts of every
        outcome count)."""
        return self.max_attempts_rule(outcome)[0]

    @property
    def retries_voicemail(self) -> bool:
        """True when `retry_delays_seconds` names "voicemail": an answered call whose analysis says
        it reached a voicemail is then dialled again (`happ_integ.calls.rules.after_analysis`)."""
        return isinstance(self.retry_delays_seconds, dict) and "voicemail" in self.retry_delays_seconds

    @property
    def timezone(self) -> str:
        """The zone the agent tells the date in: calling_hours' zone (its `fallback_timezone` when
        it is "recipient"), or Europe/Kyiv without calling hours."""
        return self.calling_hours.config_zone if self.calling_hours else DEFAULT_TIMEZONE


def _key(rule: Mapping[str, object], outcome: str | None) -> str | None:
    """The key of `rule` that applies to `outcome`: its own, else "default", else None."""
    if outcome is not None and str(outcome) in rule:
        return str(outcome)
    return DEFAULT_KEY if DEFAULT_KEY in rule else None


def _rules(value: Mapping[Any, Any], field: str) -> list[tuple[str, Any]]:
    """The entries of a mapping by outcome, its keys checked."""
    if not value:
        raise ValueError(f"{field}: an empty mapping; name an outcome or {DEFAULT_KEY!r}")
    known = ", ".join(RULE_KEYS)
    for key in value:
        if key == Outcome.ANSWERED.value:
            raise ValueError(f"{field}: an answered call is never retried ({key!r}); use one of {known}")
        if not isinstance(key, str) or key not in RULE_KEYS:
            raise ValueError(f"{field}: unknown outcome {key!r}; use one of {known}")
    return [(str(key), item) for key, item in value.items()]


def _count(value: Any, name: str) -> int:
    try:
        count = _INT.validate_python(value)
    except ValidationError:
        raise ValueError(
            f"{name} is a whole number of attempts, 1 to {MAX_ATTEMPTS_LIMIT}"
            + ("" if "." in name else f', or a mapping by outcome such as {{"busy": 5, "{DEFAULT_KEY}": 3}}')
        ) from None
    if not 1 <= count <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"{name} is 1 to {MAX_ATTEMPTS_LIMIT}, not {count}")
    return count


def _delay_list(value: Any, name: str) -> list[int]:
    try:
        delays = _INTS.validate_python(value)
    except ValidationError:
        raise ValueError(
            f"{name} is a list of delays in seconds"
            + (
                ""
                if "." in name
                else f', or a mapping by outcome such as {{"busy": [300], "{DEFAULT_KEY}": [600]}}'
            )
        ) from None
    if not 1 <= len(delays) <= MAX_DELAYS:
        raise ValueError(f"{name} has 1 to {MAX_DELAYS} delays, not {len(delays)}")
    if any(delay < 0 or delay > MAX_DELAY_SECONDS for delay in delays):
        prefix = "" if name == "retry_delays_seconds" else f"{name}: "
        raise ValueError(f"{prefix}each delay is 0 to {MAX_DELAY_SECONDS} seconds")
    return delays
