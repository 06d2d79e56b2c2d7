"""The context operations as activities, named after the operation, one input model each.

    worker = Worker(client, task_queue=..., activities=context_activities(resources), ...)

They are generated from the operation registry rather than written out one by one, so an
operation added to `happ_integ.ops` is an activity with no second place to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from happ_integ.durable import error_to_failure
from happ_integ.errors import HappError
from happ_integ.ops import Operation, Resources, load_operations


def context_activities(resources: Resources) -> list[Callable[..., Any]]:
    return [_as_activity(op, resources) for op in load_operations().values()]


def _as_activity(op: Operation, resources: Resources) -> Callable[..., Any]:
    async def run(arg: BaseModel) -> BaseModel:
        try:
            result: BaseModel = await op.impl(resources, arg)
            return result
        except HappError as exc:
            raise error_to_failure(exc) from None

    # The SDK reads these annotations to decode the argument into the operation's own model.
    run.__annotations__ = {"arg": op.input_model, "return": op.result_model}
    run.__name__ = run.__qualname__ = op.name.replace(".", "_")
    return activity.defn(name=op.name)(run)
