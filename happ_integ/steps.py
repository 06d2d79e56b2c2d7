"""`ctx.step.run`: a named, timed, logged part of a handler. Not a memoized step.

    records = await ctx.step.run("crm.search", lambda: nethunt.search_records(folder, query),
                                 input={"phone": phone}, transform=lambda r: {"records": len(r)})
    cached = await ctx.step.run("cache.get", lambda: ctx.cache.get(key), optional=True)

What a step does: it runs `fn` now, logs its input, output (or `transform` of it) and duration,
and names the operations called inside it (in a durable run the activity's summary in the Web UI
is the step name); with `optional=True` an error gives `default` instead of failing the handler.

What it does not do: keep `fn`'s result or retry it. In systems where `step.run` is memoized
(Inngest's, for one) a finished step is never run again; here `fn` runs every time the handler
reaches it. What makes a durable run safe to replay is the operations, not the step: each
operation inside (`ctx.db`, `ctx.cache`, `ctx.http`, the CRM clients, `ctx.creds.get`) is an
activity, local or not, whose result the run's history keeps, so a replay gets it back without
calling the outside world again; and each is retried on its own (the handler's `retries`), inline
as well. Code in `fn` that is not an operation runs again on every replay.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from happ_integ.logs import NOTHING

if TYPE_CHECKING:
    from happ_integ.logs import HandlerLogger

T = TypeVar("T")

_current_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("happ_step", default=None)


def current_step() -> str | None:
    return _current_step.get()


class StepRunner:
    def __init__(self, log: HandlerLogger, clock: Callable[[], float]) -> None:
        self._log = log
        self._clock = clock

    async def run(
        self,
        name: str,
        fn: Callable[[], Awaitable[T] | T],
        *,
        input: Any = NOTHING,
        transform: Callable[[Any], Any] | None = None,
        skip_output: bool = False,
        optional: bool = False,
        default: Any = None,
    ) -> T:
        """Run `fn` now (every time: nothing is memoized), log its input/output/duration; with
        `optional`, an error returns `default` instead."""
        token = _current_step.set(name)
        started = self._clock()
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._log.step_end(name, self._elapsed_ms(started), input=input, error=exc)
            if optional:
                return default  # type: ignore[no-any-return]
            raise
        finally:
            _current_step.reset(token)
        output = NOTHING if skip_output else (transform(result) if transform else result)
        self._log.step_end(
            name, self._elapsed_ms(started), input=input, output=output, skip_output=skip_output
        )
        return result  # type: ignore[return-value]

    def _elapsed_ms(self, started: float) -> float:
        return round((self._clock() - started) * 1000, 3)
