"""Redaction of secrets (by key and by registered value) and of phone numbers, safe JSON
conversion, truncation."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Final
from uuid import UUID

import phonenumbers

from happ_integ.logs.events import MAX_DATA_BYTES, describe_error

_SECRET_WORDS: Final = frozenset({"password", "passwd", "secret", "token", "apikey", "authorization"})
_BEARER: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_KEY_QUALIFIERS: Final = frozenset(
    {"api", "secret", "private", "access", "signing", "encryption", "webhook", "license", "session", "auth"}
)
MASK: Final = "***"
# Keys whose values are phone numbers whatever they look like (`phone`, `phoneNumber`,
# `caller_number`, `msisdn`, `Phone: [...]` …): masked as the memo masks them.
_PHONE_WORDS: Final = frozenset(
    {
        "phone",
        "phones",
        "msisdn",
        "tel",
        "telephone",
        "mobile",
        "cellphone",
        "number",
        "numbers",
        "caller",
        "callee",
    }
)
# Seven digits or more, separators allowed: the cheap test a text passes before the phone matcher
# (which knows every country's numbering plan) reads it.
_DIGIT_RUN: Final = re.compile(r"\d(?:[\s().\-/]*\d){6,}")
# Values that are common in logs and never numbers (timestamps, dates, UUIDs): skipped at once.
_NOT_A_NUMBER: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Numbers written without a country code are read as Ukrainian ones (the integrations' default
# region); any number written with `+` or 00 is recognised whatever its country.
PHONE_REGION: Final = "UA"


class Redactor:
    """Masks secret values wherever they appear, and values under secret-looking keys.

        logs = Redactor()                                  # the process-wide `redactor` below
        logs.add_secret(api_key)                           # "***" in every line from now on
        echo = Redactor(mask_credentials=False)
        echo.add_secret(token, "{{secret:TOKEN}}")         # put a name back where a peer echoed it
        echo.scrub_all({"headers": {"x": token}})          # → {"headers": {"x": "{{secret:TOKEN}}"}}

    This is the one redactor: log transports, the activities that resolve secrets and the HTTP
    clients' error messages each hold an instance. `mask_credentials` also masks
    `Bearer …`/`Basic …` credentials in free text, which a log line may carry unannounced.

    What a log line shows goes through `clean` and `redact`, which also mask phone numbers (with
    `mask_phones`, the default) as the call's memo does, `+38099*****73`: any value under a
    phone-like key (`phone`, `phone_number`, `callee`, `msisdn` …), and any number found in any
    text (`"lead +380 99 482 95 73 called"`). `scrub` and `scrub_all` leave numbers alone: they put
    names back into data a handler still works with.
    """

    def __init__(
        self,
        secret_words: frozenset[str] = _SECRET_WORDS,
        min_secret_len: int = 4,
        *,
        mask_credentials: bool = True,
        mask_phones: bool = True,
    ) -> None:
        self.secret_words = secret_words
        self.min_secret_len = min_secret_len
        self.mask_credentials = mask_credentials
        self.mask_phones = mask_phones
        self._replacements: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def add_secret(self, value: object, replacement: str = MASK) -> None:
        """Register a value (str, or anything with `get_secret_value()`) never to be shown as is."""
        getter = getattr(value, "get_secret_value", None)
        text = getter() if callable(getter) else value
        if not isinstance(text, str) or len(text) < self.min_secret_len:
            return
        escaped = json.dumps(text, ensure_ascii=False)[1:-1]
        for form in {text, escaped}:
            if len(form) >= self.min_secret_len:
                self._replacements[form] = replacement
        ordered = sorted(self._replacements, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def is_secret_key(self, key: str) -> bool:
        words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
        tokens = [t for t in re.split(r"[^a-z0-9]+", words) if t]
        # A bare `key` (a cache key, a dedup key) is data; `api_key`, `private_key` … are secrets.
        return bool(tokens) and (
            (len(tokens) >= 2 and tokens[-1] == "key" and tokens[-2] in _KEY_QUALIFIERS)
            or any(t in self.secret_words for t in tokens)
        )

    def scrub(self, text: str) -> str:
        """Mask registered secret values (and, with `mask_credentials`, bearer/basic credentials)."""
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._replacements[m.group(0)], text)
        if self.mask_credentials and " " in text:
            text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        return text

    def clean(self, text: str) -> str:
        """`scrub`, then phone numbers masked (with `mask_phones`): what any log text goes through."""
        text = self.scrub(text)
        return mask_phone_numbers(text) if self.mask_phones else text

    def is_phone_key(self, key: str) -> bool:
        """`phone`, `phoneNumber`, `caller_number`, `Phone`, `msisdn` …: a key whose value is a number."""
        return self.mask_phones and _phone_key(key)

    def scrub_all(self, value: Any) -> Any:
        """`scrub` every string inside dicts and lists; the structure and other values stay as they are."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_all(v) for v in value]
        return value

    def redact(self, value: Any) -> Any:
        """A JSON-native copy of `value` with secrets and phone numbers masked; never raises on odd objects."""
        return self._walk(value, 0, set())

    def _walk(self, v: Any, depth: int, seen: set[int], phone: bool = False) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, enum.Enum):
            v = v.value
        if isinstance(v, str):
            return mask_number(self.scrub(v)) if phone else self.clean(v)
        if isinstance(v, int):
            return mask_number(str(v)) if phone else int(v)
        if isinstance(v, float):
            return float(v) if math.isfinite(v) else str(v)
        if isinstance(v, datetime | date | dtime):
            return v.isoformat()
        if isinstance(v, timedelta):
            return v.total_seconds()
        if isinstance(v, Decimal | UUID | PurePath):
            return self.scrub(str(v))
        if isinstance(v, bytes | bytearray | memoryview):
            return f"<{len(v)} bytes>"
        if isinstance(v, BaseException):
            return self.scrub(describe_error(v) or "")
        if callable(getattr(v, "get_secret_value", None)):
            return MASK
        if depth >= 24:
            return "<max depth>"
        if id(v) in seen:
            return "<cycle>"
        seen = seen | {id(v)}
        if isinstance(v, Mapping):
            out: dict[str, Any] = {}
            for k, item in v.items():
                key = self.clean(k if isinstance(k, str) else str(k))
                if self.is_secret_key(key):
                    out[key] = MASK
                else:
                    out[key] = self._walk(item, depth + 1, seen, phone or self.is_phone_key(key))
            return out
        if isinstance(v, list | tuple | set | frozenset):
            return [self._walk(item, depth + 1, seen, phone) for item in v]
        dump = getattr(v, "model_dump", None)
        if callable(dump):
            try:
                return self._walk(dump(mode="json"), depth + 1, seen, phone)
            except Exception:
                pass
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: getattr(v, f.name, None) for f in dataclasses.fields(v)}
            return self._walk(fields, depth + 1, seen, phone)
        try:
            text = repr(v)
        except Exception:
            text = f"<{type(v).__name__}>"
        return self.clean(text[:500])


redactor: Final = Redactor()
"""The process-wide redactor both transports use by default; stores register secrets here."""


_PHONE_LIKE: Final = re.compile(r"\+?\d[\d\s().-]{7,}\d")


def mask_phones(text: str) -> str:
    """Phone-like digit runs as `<phone>`: `mask_phones("call +380 99 482 95 73")` → `"call <phone>"`."""
    return _PHONE_LIKE.sub("<phone>", text)


@functools.lru_cache(maxsize=4096)
def _phone_key(key: str) -> bool:
    # Keys repeat from line to line (the same models are logged again and again): worked out once.
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    return any(t in _PHONE_WORDS for t in re.split(r"[^a-z0-9]+", words) if t)


def mask_number(text: str) -> str:
    """A phone number as the memo shows it: `mask_number("+380 99 482 95 73")` → `"+38099*****73"`.

    The country and operator code (five digits) and the last two stay; a value with fewer than
    seven digits is no number (`"+380..."`), and one already starred is left as it is.
    """
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7 or "*" in text:
        return text
    plus = "+" if text.lstrip().startswith(("+", "00")) else ""
    digits = digits[2:] if plus and text.lstrip().startswith("00") else digits
    return f"{plus}{digits[:5]}{'*' * (len(digits) - 7)}{digits[-2:]}"


def mask_phone_numbers(text: str, region: str = PHONE_REGION) -> str:
    """Every valid phone number in `text` masked: `"lead +380994829573 called"` → `"lead +38099*****73 called"`.

    Dates, times, amounts and ids are not numbers to the matcher (it knows each country's plan),
    so they stay readable; a text without seven digits in a row is not even looked at.
    """
    if not _DIGIT_RUN.search(text) or _NOT_A_NUMBER.fullmatch(text):
        return text
    found = list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))
    for match in reversed(found):
        text = text[: match.start] + mask_number(match.raw_string) + text[match.end :]
    return text


def truncate(value: Any, max_bytes: int = MAX_DATA_BYTES) -> tuple[Any, bool]:
    """`(value, False)` if its JSON fits in `max_bytes`, else `(preview string with marker, True)`."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Measured as the stream will write it: text that is not valid Unicode goes out escaped.
    raw = text.encode("utf-8", "backslashreplace")
    if len(raw) <= max_bytes:
        return value, False
    preview = raw[:max_bytes].decode("utf-8", "ignore")
    return f"{preview}…[truncated: {len(raw)} bytes]", True


def cap_text(text: str | None, max_bytes: int) -> str | None:
    if text is None or len(text) <= max_bytes:
        return text
    return f"{text[:max_bytes]}…[truncated: {len(text)} chars]"
