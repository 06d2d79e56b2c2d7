"""How an integration's outbound calls behave: the `call_handling` config.

    handling = await ctx.config.get("call_handling", CallHandling)
    handling.retry_delay(attempt=1)            # 600: seconds to wait after the first failed attempt

Every field has a default, so `PUT /{integration}/config/call_handling {"concurrency_limit": 5}`
changes one thing and keeps the rest.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
DEFAULT_TIMEZONE = "Europe/Kyiv"


class CallingHours(BaseModel):
    """When calls may be placed: local `start`–`end` on ISO weekdays (1 = Monday … 7 = Sunday)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = DEFAULT_TIMEZONE
    start: str = Field(default="09:00", description="HH:MM, local time")
    end: str = Field(default="20:00", description="HH:MM, local time, after start")
    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6], min_length=1, max_length=7)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Kyiv)") from None
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

    @model_validator(mode="after")
    def _ordered(self) -> CallingHours:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class CallHandling(BaseModel):
    """The `call_handling` config of an integration with a call flow."""

    model_config = ConfigDict(extra="forbid")

    concurrency_limit: int = Field(default=3, ge=1, le=1000, description="calls dialing or talking at once")
    short_call_seconds: int = Field(default=5, ge=0, le=3600, description="a shorter call is retried")
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_delays_seconds: list[int] = Field(
        default=[600, 1800, 3600],
        min_length=1,
        max_length=20,
        description="after attempt N; the last repeats",
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

    @field_validator("retry_delays_seconds")
    @classmethod
    def _delays(cls, value: list[int]) -> list[int]:
        if any(delay < 0 or delay > 7 * 24 * 3600 for delay in value):
            raise ValueError("each delay is 0 to 604800 seconds")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r} (an ISO 3166 code such as UA)")
        return value.upper()

    def retry_delay(self, attempt: int) -> int:
        """Seconds to wait after attempt number `attempt` (1-based) failed; the last delay repeats."""
        return self.retry_delays_seconds[min(attempt, len(self.retry_delays_seconds)) - 1]

    @property
    def timezone(self) -> str:
        return self.calling_hours.timezone if self.calling_hours else DEFAULT_TIMEZONE
