"""The console transport: one tree per run (trace id), printed when the run ends."""

from __future__ import annotations

import atexit
import dataclasses
import json
import re
import weakref
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final

from happ_integ.logs.events import (
    LEVELS,
    MAX_DATA_BYTES,
    NOTHING,
    STEP_EVENTS,
    Level,
    LogEvent,
    SupportsWrite,
)
from happ_integ.logs.redact import Redactor
from happ_integ.logs.transports import StreamTransport, format_ms

_IDENT: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def pretty(value: Any) -> str:
    """JS-like inline rendering of JSON-native data: `{ phone: "+380...", n: 1 }`."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = (
            f"{k if _IDENT.match(k) else json.dumps(k, ensure_ascii=False)}: {pretty(v)}"
            for k, v in value.items()
        )
        return "{ " + ", ".join(items) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(pretty(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


_ANSI: Final = {
    "dim": "2",
    "bold": "1",
    "red": "31",
    "yellow": "33",
    "green": "32",
    "cyan": "36",
    "magenta": "35",
}
_LEVEL_COLOR: Final = {"debug": "dim", "info": "green", "warning": "yellow", "error": "red"}


@dataclasses.dataclass
class _Run:
    integration: str | None
    handler: str | None
    lines: list[str] = dataclasses.field(default_factory=list)
    header_written: bool = False
    since: datetime | None = None


class ConsoleTransport(StreamTransport):
    """The step tree, one per trace id, printed when the run ends (see the module doc)."""

    def __init__(
        self,
        stream: SupportsWrite | None = None,
        color: bool | None = None,
        *,
        redactor: Redactor | None = None,
        tz: tzinfo | None = None,
        max_data_bytes: int = MAX_DATA_BYTES,
        min_level: Level = "debug",
        width: int = 64,
        flush_after: timedelta | None = timedelta(seconds=5),
        max_buffered_lines: int = 500,
    ) -> None:
        super().__init__(stream, redactor, max_data_bytes, min_level)
        if color is None:
            isatty = getattr(self.stream, "isatty", None)
            color = bool(callable(isatty) and isatty())
        self.color = color
        self.tz = tz if tz is not None else datetime.now().astimezone().tzinfo
        self.width = width
        self.flush_after = flush_after
        self.max_buffered_lines = max_buffered_lines
        self._runs: dict[str, _Run] = {}
        self._inputs: dict[tuple[str, str], list[LogEvent]] = {}
        self._last_writer: str | None = None
        atexit.register(_close_at_exit, weakref.ref(self))

    # --- rendering
    def _c(self, style: str, text: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if self.color else text

    def _header(self, run: _Run, trace: str, continued: bool = False) -> str:
        name = "/".join(p for p in (run.integration, run.handler) if p) or "run"
        text = self.redactor.clean(
            f"┌─ {name}"
            + (f" [trace-{trace}]" if trace else "")
            + (" (continued)" if continued else "")
            + " "
        )
        return self._c("cyan", text + "─" * max(3, self.width - len(text)))

    def _data_text(self, data: Any) -> str:
        value, cut = self._data(data)
        return str(value) if cut else pretty(value)

    def _prefix(self, e: LogEvent, with_name: bool) -> list[str]:
        ts = e.timestamp.astimezone(self.tz).strftime("%H:%M:%S.%f")[:-3]
        parts = [self._c("dim", ts), self._c(_LEVEL_COLOR[e.level], f"[{e.level.upper()}]")]
        if with_name and (e.integration or e.handler):
            parts.append("/".join(p for p in (e.integration, e.handler) if p))
        if with_name and e.trace_id:
            parts.append(f"[trace-{e.trace_id}]")
        return parts

    def _message(self, e: LogEvent, with_name: bool) -> str:
        parts = self._prefix(e, with_name)
        clean = self.redactor.clean  # secrets and phone numbers masked, as in the data
        parts.append(f"{e.span}: {clean(e.event)}" if e.span else clean(e.event))
        if e.message:
            parts.append(clean(e.message))
        if e.duration_ms is not None:
            parts.append(f"({format_ms(e.duration_ms)})")
        if e.data is not NOTHING:
            parts.append(self._data_text(e.data))
        if e.error is not None:
            parts.append(self._c("red", f"error: {clean(e.error)}"))
        return " ".join(parts)

    def _step(self, end: LogEvent | None, inputs: LogEvent | None, span: str) -> list[str]:
        first = inputs if end is None else end
        assert first is not None
        head = f"├─ {self._c('bold', span)}"
        if end is not None and end.duration_ms is not None:
            head += f" ({format_ms(end.duration_ms)})"
        if end is None:
            head += self._c("yellow", " [unfinished]")
        elif end.event == "skipped":
            head += self._c("yellow", " [skipOutput]")
        elif end.event == "error":
            head += self._c("red", " [ERROR]")
        lines = [head]
        if inputs is not None:
            lines.append(f"│  └─ input: {self._data_text(inputs.data)}")
        if end is not None and end.event == "output":
            lines.append(f"│  └─ output: {self._data_text(end.data)}")
        if end is not None and end.error is not None:
            lines.append(f"│  └─ {self._c('red', 'error: ' + self.redactor.clean(end.error))}")
        if end is not None and end.message:
            lines.append(f"│  └─ {self.redactor.clean(end.message)}")
        return lines

    # --- buffering
    def __call__(self, e: LogEvent) -> None:
        if LEVELS[e.level] < self.min_level:
            return
        with self._lock:
            self._handle(e)

    def _handle(self, e: LogEvent) -> None:
        key = e.trace_id or ""
        run = self._runs.get(key)
        if e.event == "handler:start" and e.span is None:
            if run is not None:
                self._emit(key, final=True)
            run = self._runs[key] = _Run(e.integration, e.handler, since=e.timestamp)
            run.lines.append("│ " + self._message(e, with_name=False))
            return
        if e.span is not None and e.event in STEP_EVENTS:
            if e.event == "input":
                self._inputs.setdefault((key, e.span), []).append(e)
                return
            lines = self._step(e, self._pop_input(key, e.span), e.span)
            if run is None:
                self._standalone(e, lines)
                return
            run.lines += ["│", *("│ " + line for line in lines)]
        elif e.event == "handler:end" and e.span is None and run is not None:
            for (k, span), pending in list(self._inputs.items()):
                if k == key:
                    del self._inputs[(k, span)]
                    for inp in pending:
                        run.lines += ["│", *("│ " + line for line in self._step(None, inp, span))]
            run.lines += ["│", "│ " + self._message(e, with_name=False)]
            self._emit(key, final=True)
            return
        elif run is None:
            self._write_block([self._message(e, with_name=True)], None)
            return
        else:
            run.lines.append("│ " + self._message(e, with_name=False))
        if run.since is None:
            run.since = e.timestamp
        too_old = self.flush_after is not None and e.timestamp - run.since >= self.flush_after
        if e.level == "error" or too_old or len(run.lines) >= self.max_buffered_lines:
            self._emit(key, final=False)

    def _pop_input(self, key: str, span: str) -> LogEvent | None:
        pending = self._inputs.get((key, span))
        if not pending:
            return None
        first = pending.pop(0)
        if not pending:
            del self._inputs[(key, span)]
        return first

    def _standalone(self, e: LogEvent, lines: list[str]) -> None:
        prefix = " ".join(self._prefix(e, with_name=True))
        self._write_block([f"{prefix} {lines[0][3:]}", *(" " + line[1:] for line in lines[1:])], None)

    def _emit(self, key: str, final: bool) -> None:
        run = self._runs[key]
        out: list[str] = []
        if not run.header_written:
            out.append(self._header(run, key))
            run.header_written = True
        elif self._last_writer != key and (run.lines or final):
            out.append(self._header(run, key, continued=True))
        out += run.lines
        run.lines = []
        run.since = None
        if final:
            out.append(self._c("cyan", "└" + "─" * (self.width - 2)))
            del self._runs[key]
        if out:
            self._write_block(out, key)

    def _write_block(self, lines: list[str], writer: str | None) -> None:
        self._write("\n".join(lines) + "\n")
        self._last_writer = writer

    def flush(self, trace_id: str | None = None) -> None:
        """Print buffered lines of one run (or all); the runs stay open."""
        with self._lock:
            for key in [trace_id or ""] if trace_id is not None else list(self._runs):
                if key in self._runs:
                    self._emit(key, final=False)

    def close(self) -> None:
        """Print and close every open run (called at interpreter exit)."""
        with self._lock:
            try:
                for key in list(self._runs):
                    self._runs[key].lines.append("│ " + self._c("yellow", "(run still open)"))
                    self._emit(key, final=True)
            except (ValueError, OSError):  # stream already closed at exit
                pass


def _close_at_exit(ref: weakref.ReferenceType[ConsoleTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport.close()
