"""Sinks: capture, fan-out, replay safety, and `make_sink` for HAPP_LOG_FORMAT."""

from __future__ import annotations

from collections.abc import Iterator

from temporalio import workflow

from happ_integ.logs.console import ConsoleTransport
from happ_integ.logs.events import LogEvent, LogSink, SupportsWrite
from happ_integ.logs.redact import Redactor
from happ_integ.logs.transports import JsonTransport


class CaptureSink:
    """Keeps events in `events`, for tests."""

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def __call__(self, event: LogEvent) -> None:
        self.events.append(event)

    def __iter__(self) -> Iterator[LogEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def named(self, event: str, span: str | None = None) -> list[LogEvent]:
        return [e for e in self.events if e.event == event and (span is None or e.span == span)]

    def clear(self) -> None:
        self.events.clear()


class MultiSink:
    """Sends every event to each sink in turn."""

    def __init__(self, *sinks: LogSink) -> None:
        self.sinks = list(sinks)

    def __call__(self, event: LogEvent) -> None:
        for sink in self.sinks:
            sink(event)

    def flush(self) -> None:
        for sink in self.sinks:
            _flush(sink)


class ReplaySafeSink:
    """Drops events while a Temporal workflow is replaying; passes everything else on."""

    def __init__(self, inner: LogSink) -> None:
        self.inner = inner

    def __call__(self, event: LogEvent) -> None:
        if workflow.in_workflow() and workflow.unsafe.is_replaying():
            return
        self.inner(event)

    def flush(self) -> None:
        _flush(self.inner)


def _flush(sink: object) -> None:
    flush = getattr(sink, "flush", None)
    if callable(flush):
        flush()


def make_sink(
    format: str,
    *,
    stream: SupportsWrite | None = None,
    redactor: Redactor | None = None,
    color: bool | None = None,
    replay_safe: bool = True,
) -> LogSink:
    """The transport for `HAPP_LOG_FORMAT` (`console` | `json`), replay-safe unless told not."""
    kind = format.strip().lower()
    transport: LogSink
    if kind == "json":
        transport = JsonTransport(stream, redactor=redactor)
    elif kind == "console":
        transport = ConsoleTransport(stream, color, redactor=redactor)
    else:
        raise ValueError(f"unknown log format {format!r}: use 'console' or 'json'")
    return ReplaySafeSink(transport) if replay_safe else transport


_default_sink: LogSink | None = None


def set_default_sink(sink: LogSink | None) -> None:
    """Install the process-wide sink (the worker and API do this once at start)."""
    global _default_sink
    _default_sink = sink


def get_default_sink() -> LogSink:
    """The installed sink, or a replay-safe JSON one on stderr when none was installed."""
    global _default_sink
    if _default_sink is None:
        _default_sink = make_sink("json")
    return _default_sink
