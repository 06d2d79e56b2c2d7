"""`HandlerLogger`, what handlers call as `ctx.log`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from happ_integ.logs.events import NOTHING, Level, LogEvent, LogSink, describe_error, now
from happ_integ.logs.sinks import get_default_sink


class HandlerLogger:
    """`ctx.log`: bound to one run (integration, handler, trace id) and a sink."""

    def __init__(
        self,
        sink: LogSink | None = None,
        *,
        integration: str | None = None,
        handler: str | None = None,
        trace_id: str | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.sink = sink
        self.integration = integration
        self.handler = handler
        self.trace_id = trace_id
        self.clock = clock

    def bind(self, **fields: str | None) -> HandlerLogger:
        """A copy with some of integration / handler / trace_id replaced."""
        kw: dict[str, Any] = {
            "integration": self.integration,
            "handler": self.handler,
            "trace_id": self.trace_id,
        }
        kw.update(fields)
        return HandlerLogger(self.sink, clock=self.clock, **kw)

    def emit(
        self,
        level: Level,
        event: str,
        *,
        span: str | None = None,
        duration_ms: float | None = None,
        data: Any = NOTHING,
        message: str | None = None,
        error: BaseException | str | None = None,
    ) -> None:
        """Send one event; a failing sink is reported on stderr, never raised into the handler."""
        e = LogEvent(
            level=level,
            event=event,
            trace_id=self.trace_id,
            integration=self.integration,
            handler=self.handler,
            span=span,
            duration_ms=duration_ms,
            data=data,
            message=message,
            timestamp=self.clock(),
            error=describe_error(error),
        )
        try:
            (self.sink if self.sink is not None else get_default_sink())(e)
        except Exception as exc:
            try:
                sys.stderr.write(f"happ-integ: log sink failed: {describe_error(exc)}\n")
            except Exception:
                pass

    def debug(self, message: str, data: Any = None) -> None:
        self.emit("debug", message, data=NOTHING if data is None else data)

    def info(self, message: str, data: Any = None) -> None:
        self.emit("info", message, data=NOTHING if data is None else data)

    def warning(self, message: str, data: Any = None) -> None:
        self.emit("warning", message, data=NOTHING if data is None else data)

    warn = warning

    def error(self, message: str, error: BaseException | str | None = None, data: Any = None) -> None:
        self.emit("error", message, error=error, data=NOTHING if data is None else data)

    def handler_start(self, data: Any = NOTHING) -> None:
        self.emit("info", "handler:start", data=data)

    def handler_end(
        self, duration_ms: float, error: BaseException | str | None = None, data: Any = NOTHING
    ) -> None:
        self.emit(
            "error" if error is not None else "info",
            "handler:end",
            duration_ms=duration_ms,
            data=data,
            error=error,
        )

    def step_end(
        self,
        span: str,
        duration_ms: float,
        *,
        input: Any = NOTHING,
        output: Any = NOTHING,
        skip_output: bool = False,
        error: BaseException | str | None = None,
    ) -> None:
        """Log a finished step: an `input` event (when input was given), then one of
        `output` (data = output), `skipped` (skip_output, output not logged) or `error`."""
        if input is not NOTHING:
            self.emit("debug", "input", span=span, data=input)
        if error is not None:
            self.emit("error", "error", span=span, duration_ms=duration_ms, error=error)
        elif skip_output:
            self.emit("debug", "skipped", span=span, duration_ms=duration_ms)
        else:
            self.emit(
                "debug",
                "output",
                span=span,
                duration_ms=duration_ms,
                data=None if output is NOTHING else output,
            )
