"""Timers of the call workflows: each with a summary the Web UI shows, and cancelled when the wait
it bounds ends early.

    if not await timers.wait(lambda: self._decision is not None, timedelta(minutes=1), "ring timeout"):
        ...                                               # the minute passed first
    reclaim = timers.start(timedelta(seconds=30), "reclaim check")
    await workflow.wait_condition(lambda: changed or reclaim.done())

Runs that started before the patch `timers-named-and-cancelled` keep their unnamed timers and
leave them running to the end (the commands their histories hold); a run decides once, at its
first timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

PATCH = "timers-named-and-cancelled"
# A timer that waits less than this is not worth a timer event (and `workflow.sleep` of 0 fails).
_SHORTEST = timedelta(seconds=1)
# A timer due this soon is left to run out rather than cancelled. On the time-skipping test server
# a cancel that crosses the timer's firing (it fired while the workflow task ran) is refused, and
# the run is never given another task; that server skips no time while a workflow task is
# outstanding, so a timer due more than a task's timeout (10 s) away cannot fire meanwhile. The
# real server takes such a cancel; one left running only wakes the workflow to find nothing to do.
_LEAVE_RUNNING_WITHIN = timedelta(seconds=10)


class Timer:
    """One workflow timer of `duration`, running from now; `done()` once it fired."""

    def __init__(self, duration: timedelta, summary: str) -> None:
        self._named = workflow.patched(PATCH)
        self._due = workflow.now() + duration
        self._sleep = asyncio.ensure_future(
            workflow.sleep(duration, summary=summary if self._named else None)
        )

    def done(self) -> bool:
        return self._sleep.done()

    def cancel(self) -> None:
        """Cancel the timer if it has not fired (and is not about to): it leaves the timeline."""
        if self._named and not self._sleep.done() and self._due - workflow.now() > _LEAVE_RUNNING_WITHIN:
            self._sleep.cancel()


def start(duration: timedelta, summary: str) -> Timer:
    return Timer(max(duration, _SHORTEST), summary)


async def wait(condition: Callable[[], object], within: timedelta, summary: str) -> bool:
    """True when `condition` came true, False when `within` passed first (its timer then fired)."""
    timer = start(within, summary)
    await workflow.wait_condition(lambda: bool(condition()) or timer.done())
    timer.cancel()
    return bool(condition())
