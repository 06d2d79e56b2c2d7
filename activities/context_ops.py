"""The context operations as activities, named after the operation, one input model each.

    worker = Worker(client, task_queue=..., activities=context_activities(resources), ...)

They are generated from the operation registry rather than written out one by one, so an
operation added to `happ_integ.ops` is an activity with no second place to keep in step.
"""

from __future__ import annotations

import asyncio
import time
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from happ_integ.durable import error_to_failure
from happ_integ.errors import DependencyUnavailable, HappError
from happ_integ.ops import Operation, Resources, load_operations
from happ_integ.stores.writes import WriteLedger


def context_activities(resources: Resources) -> list[Callable[..., Any]]:
    return [_as_activity(op, resources) for op in load_operations().values()]


# PostgreSQL out of reach is waited out inside the activity for this long (a restart, a failover),
# so the handler's own `retries` are kept for the errors of the services it calls.
POSTGRES_PATIENCE_SECONDS = 40.0


def _as_activity(op: Operation[Any, Any], resources: Resources) -> Callable[..., Any]:
    async def run(arg: BaseModel) -> BaseModel:
        deadline = time.monotonic() + POSTGRES_PATIENCE_SECONDS
        pause = 0.5
        while True:
            try:
                if op.writes:
                    return await _write_once(op, resources, arg)
                result: BaseModel = await op.impl(resources, arg)
                return result
            except DependencyUnavailable as exc:
                if exc.dependency != "PostgreSQL" or time.monotonic() + pause > deadline:
                    raise error_to_failure(exc) from None
                activity.heartbeat()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            except HappError as exc:
                raise error_to_failure(exc) from None

    # The SDK reads these annotations to decode the argument into the operation's own model.
    run.__annotations__ = {"arg": op.input_model, "return": op.result_model}
    run.__name__ = run.__qualname__ = op.name.replace(".", "_")
    return activity.defn(name=op.name)(run)


async def _write_once(op: Operation[Any, Any], resources: Resources, arg: BaseModel) -> BaseModel:
    """Make a write once per activity, whatever happens to its attempts.

    A retry after the write succeeded (the worker died before reporting it) answers from the
    ledger. After an attempt that was cut short mid-request, the operation's `landed` check asks
    the service whether the write got through before trying it again.
    """
    info = activity.info()
    integration = str(getattr(arg, "integration", ""))
    ledger = WriteLedger(resources.pool, integration)
    key = f"{info.workflow_id}/{info.activity_id}"
    entry = await ledger.begin(key)
    if entry.done:
        return op.result_model.model_validate(entry.result)
    if entry.interrupted and op.landed is not None:
        found = await op.landed(resources, arg, entry.started_at)
        if found is not None:
            await ledger.finish(key, found.model_dump(mode="json"))
            return typing.cast(BaseModel, found)
    try:
        result: BaseModel = await op.impl(resources, arg)
    except BaseException:
        await ledger.forget(key)
        raise
    await ledger.finish(key, result.model_dump(mode="json"))
    return result
