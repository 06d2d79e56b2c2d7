"""Runs one handler against a context: the shared core of the inline and durable modes.

response = await execute_handler(definition, ctx, clock)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError
from temporalio.workflow import NondeterminismError

from happ_integ.context import Context, reset_current, set_current
from happ_integ.errors import HandlerFailed, HappError
from happ_integ.handler import HandlerDefinition


class HandlerReturnedInvalid(HappError):
    """The handler's return value does not match its declared response model."""

    status_code = 500


async def execute_handler(
    definition: HandlerDefinition, ctx: Context[Any], clock: Callable[[], float]
) -> BaseModel:
    started = clock()
    ctx.log.handler_start(ctx.payload.model_dump(mode="json"))
    token = set_current(ctx)
    try:
        result = await definition.fn(ctx)
        response = _coerce_response(definition, result)
    except HappError as exc:
        ctx.log.handler_end(round((clock() - started) * 1000, 3), error=exc)
        raise
    except Exception as exc:
        # A history mismatch fails the workflow task, so a fixed deploy can resume the run. A call the
        # sandbox refused is a handler bug that no retry fixes: it fails the run like any other error.
        if isinstance(exc, NondeterminismError) and not isinstance(exc, RestrictedWorkflowAccessError):
            raise
        ctx.log.handler_end(round((clock() - started) * 1000, 3), error=exc)
        raise HandlerFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        reset_current(token)
    ctx.log.handler_end(round((clock() - started) * 1000, 3))
    return response


def _coerce_response(definition: HandlerDefinition, result: Any) -> BaseModel:
    model = definition.response_model
    if isinstance(result, model):
        return result
    try:
        if isinstance(result, BaseModel):
            return model.model_validate(result.model_dump())
        return model.model_validate(result)
    except ValidationError as exc:
        raise HandlerReturnedInvalid(
            f"handler {definition.name!r} returned a value that is not a valid {model.__name__}: "
            f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}"
        ) from None
