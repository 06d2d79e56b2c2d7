"""Redaction of secrets (by key and by registered value), safe JSON conversion, truncation."""

from __future__ import annotations

import dataclasses
import enum
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

from happ_integ.logs.events import MAX_DATA_BYTES, describe_error

_SECRET_WORDS: Final = frozenset({"password", "passwd", "secret", "token", "apikey", "authorization"})
_BEARER: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_KEY_QUALIFIERS: Final = frozenset(
    {"api", "secret", "private", "access", "signing", "encryption", "webhook", "license", "session", "auth"}
)
MASK: Final = "***"


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
    """

    def __init__(
        self,
        secret_words: frozenset[str] = _SECRET_WORDS,
        min_secret_len: int = 4,
        *,
        mask_credentials: bool = True,
    ) -> None:
        self.secret_words = secret_words
        self.min_secret_len = min_secret_len
        self.mask_credentials = mask_credentials
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
        """A JSON-native copy of `value` with secrets masked; never raises on odd objects."""
        return self._walk(value, 0, set())

    def _walk(self, v: Any, depth: int, seen: set[int]) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, enum.Enum):
            v = v.value
        if isinstance(v, str):
            return self.scrub(v)
        if isinstance(v, int):
            return int(v)
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
                key = self.scrub(k if isinstance(k, str) else str(k))
                out[key] = MASK if self.is_secret_key(key) else self._walk(item, depth + 1, seen)
            return out
        if isinstance(v, list | tuple | set | frozenset):
            return [self._walk(item, depth + 1, seen) for item in v]
        dump = getattr(v, "model_dump", None)
        if callable(dump):
            try:
                return self._walk(dump(mode="json"), depth + 1, seen)
            except Exception:
                pass
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: getattr(v, f.name, None) for f in dataclasses.fields(v)}
            return self._walk(fields, depth + 1, seen)
        try:
            text = repr(v)
        except Exception:
            text = f"<{type(v).__name__}>"
        return self.scrub(text[:500])


redactor: Final = Redactor()
"""The process-wide redactor both transports use by default; stores register secrets here."""


_PHONE_LIKE: Final = re.compile(r"\+?\d[\d\s().-]{7,}\d")


def mask_phones(text: str) -> str:
    """Phone-like digit runs as `<phone>`: `mask_phones("call +380 99 482 95 73")` → `"call <phone>"`."""
    return _PHONE_LIKE.sub("<phone>", text)


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
