"""Stream transports: JSON lines, and `LoggerStream` to write through `logging`."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC
from typing import Any

from happ_integ.logs.events import LEVELS, MAX_DATA_BYTES, NOTHING, Level, LogEvent, SupportsWrite
from happ_integ.logs.redact import Redactor, cap_text, redactor, truncate


class StreamTransport:
    def __init__(
        self,
        stream: SupportsWrite | None,
        redactor_: Redactor | None,
        max_data_bytes: int,
        min_level: Level,
    ) -> None:
        self._stream = stream
        self.redactor = redactor_ if redactor_ is not None else redactor
        self.max_data_bytes = max_data_bytes
        self.min_level = LEVELS[min_level]
        self._lock = threading.RLock()

    @property
    def stream(self) -> SupportsWrite:
        return self._stream if self._stream is not None else sys.stderr

    def _write(self, text: str) -> None:
        stream = self.stream
        text = self.redactor.scrub(text)
        try:
            stream.write(text)
        except UnicodeEncodeError:
            # Text the stream cannot encode (an unpaired surrogate, or any non-ASCII on an ASCII
            # terminal) is written escaped: a log line is never lost to its content.
            encoding = getattr(stream, "encoding", None) or "utf-8"
            stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
        flush = getattr(stream, "flush", None)
        if callable(flush):
            flush()

    def _data(self, data: Any) -> tuple[Any, bool]:
        return truncate(self.redactor.redact(data), self.max_data_bytes)

    def flush(self) -> None:
        """Write anything buffered (nothing for transports that do not buffer)."""


class JsonTransport(StreamTransport):
    """One JSON object per line: level, ts, traceId, integration, handler, span, event, …"""

    def __init__(
        self,
        stream: SupportsWrite | None = None,
        *,
        redactor: Redactor | None = None,
        max_data_bytes: int = MAX_DATA_BYTES,
        min_level: Level = "debug",
    ) -> None:
        super().__init__(stream, redactor, max_data_bytes, min_level)

    def render(self, e: LogEvent) -> str:
        # Secrets and phone numbers masked in each text field; data is masked by `_data`.
        scrub = self.redactor.clean
        record: dict[str, Any] = {
            "level": e.level,
            "ts": e.timestamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "traceId": e.trace_id,
            "integration": e.integration,
            "handler": e.handler,
            "span": e.span,
            "event": cap_text(scrub(e.event), self.max_data_bytes),
            "message": cap_text(None if e.message is None else scrub(e.message), self.max_data_bytes),
            "duration_ms": None if e.duration_ms is None else _round_ms(e.duration_ms),
        }
        record = {k: v for k, v in record.items() if v is not None}
        if e.data is not NOTHING:
            record["data"] = self._data(e.data)[0]
        if e.error is not None:
            record["error"] = cap_text(scrub(e.error), self.max_data_bytes)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)

    def __call__(self, event: LogEvent) -> None:
        if LEVELS[event.level] < self.min_level:
            return
        line = self.render(event) + "\n"
        with self._lock:
            self._write(line)


def _round_ms(ms: float) -> float | int:
    value = round(ms, 3)
    return int(value) if value == int(value) else value


def format_ms(ms: float) -> str:
    if ms < 1:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{round(ms)}ms"
    return f"{ms / 1000:.1f}s"


class LoggerStream:
    """A write()-able stream that sends each complete line to a `logging.Logger`."""

    def __init__(
        self, logger: logging.Logger | logging.LoggerAdapter[Any], level: int = logging.INFO
    ) -> None:
        self.logger = logger
        self.level = level
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.logger.log(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.logger.log(self.level, self._partial)
            self._partial = ""
