"""Inline mode: a handler runs in the API process, its operations called directly.

executor = InlineExecutor(resources, log, retries=definition.retries)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from happ_integ.context import Context
from happ_integ.errors import HandlerTimedOut, HappError
from happ_integ.handler import HandlerDefinition
from happ_integ.logs import HandlerLogger, LogSink
from happ_integ.ops import Operation, Resources
from happ_integ.ops.secrets import inline_run, new_inline_run
from happ_integ.runner import execute_handler
from happ_integ.steps import StepRunner, current_step

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class InlineExecutor:
    mode: Literal["inline", "durable"] = "inline"

    def __init__(
        self, resources: Resources, log: HandlerLogger, retries: int = 0, backoff_seconds: float = 0.2
    ) -> None:
        self._resources = resources
        self._log = log
        self._retries = retries
        self._backoff = backoff_seconds
        # The run's own id: the secret references `creds.get` hands this run resolve in it only.
        self._run = new_inline_run()

    async def call(self, op: Operation[In, Out], arg: In) -> Out:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                with inline_run(self._run):
                    result = await op.impl(self._resources, arg)
                break
            except HappError as exc:
                if not exc.retryable or attempt >= self._retries:
                    self._log_op(op.name, arg, started, error=exc)
                    raise
            attempt += 1
            await asyncio.sleep(min(self._backoff * 2 ** (attempt - 1), 2.0))
        # The JSON round trip gives inline runs exactly what a durable run gets from history.
        typed = op.result_model.model_validate_json(result.model_dump_json())
        self._log_op(op.name, arg, started, output=typed)
        return typed

    def _log_op(
        self,
        op: str,
        arg: BaseModel,
        started: float,
        output: BaseModel | None = None,
        error: Exception | None = None,
    ) -> None:
        # Inside `step.run` the step is the span; an operation alone is a span of its own.
        if current_step() is not None:
            return
        duration = round((time.monotonic() - started) * 1000, 3)
        data = arg.model_dump(mode="json", exclude={"integration"})
        if error is not None:
            self._log.step_end(op, duration, input=data, error=error)
        else:
            assert output is not None
            self._log.step_end(op, duration, input=data, output=output.model_dump(mode="json"))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def uuid(self) -> str:
        return str(uuid.uuid4())


def wall_clock() -> float:
    return time.monotonic()


async def run_inline(
    resources: Resources,
    integration: str,
    definition: HandlerDefinition,
    payload: BaseModel,
    trace_id: str,
    sink: LogSink,
) -> BaseModel:
    """Run a handler in this process; its answer equals what the same handler returns durably."""
    log = HandlerLogger(sink, integration=integration, handler=definition.name, trace_id=trace_id)
    ctx: Context[Any] = Context(
        payload=payload,
        executor=InlineExecutor(resources, log, retries=definition.retries),
        integration_name=integration,
        handler_name=definition.name,
        trace_id=trace_id,
        log=log,
        step=StepRunner(log, wall_clock),
        env=resources.handler_env,
    )
    try:
        return await asyncio.wait_for(
            execute_handler(definition, ctx, wall_clock), definition.timeout_seconds
        )
    except TimeoutError:
        error = HandlerTimedOut(
            f"handler {definition.name!r} did not finish within {definition.timeout_seconds}s"
        )
        log.handler_end(definition.timeout_seconds * 1000, error=error)
        raise error from None
