"""`ctx.step.run`: a named, timed, logged unit of a handler.

    records = await ctx.step.run("crm.search", lambda: nethunt.search_records(folder, query),
                                 input={"phone": phone}, transform=lambda r: {"records": len(r)})
    cached = await ctx.step.run("cache.get", lambda: ctx.cache.get(key), optional=True)

Operations called inside a step carry its name: in a durable run the activity's summary in the
Web UI is the step name.
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
        """Run `fn`, log its input/output/duration; with `optional`, an error returns `default` instead."""
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
