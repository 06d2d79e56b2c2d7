"""Context operations: one name, one input model, one result model, one implementation.

    result = await OPERATIONS["db.insert"].impl(resources, DbInsert(integration="sofa", table="calls", row={...}))

Inline runs call `impl` directly; the worker registers each operation as a Temporal activity of
the same name (`activities/`), so a durable run's history reads like the handler's code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from happ_integ.ops.resources import Resources

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


# After an attempt that was cut short (a worker killed mid-request): did its write reach the outside
# service after all? The answer it would have given, or None when it did not land.
Landed = Callable[[Resources, Any, datetime], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    impl: Callable[[Resources, Any], Awaitable[Any]]
    # A write to an outside service: a durable run makes it once, however often its activity is
    # tried (see activities.context_ops); `landed` tells whether a cut-short attempt got through.
    writes: bool = False
    landed: Landed | None = None


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str,
    input_model: type[In],
    result_model: type[Out],
    *,
    writes: bool = False,
    landed: Callable[[Resources, In, datetime], Awaitable[Out | None]] | None = None,
) -> Callable[[Callable[[Resources, In], Awaitable[Out]]], Callable[[Resources, In], Awaitable[Out]]]:
    def register(fn: Callable[[Resources, In], Awaitable[Out]]) -> Callable[[Resources, In], Awaitable[Out]]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} is registered twice")
        OPERATIONS[name] = Operation(name, input_model, result_model, fn, writes, landed)
        return fn

    return register


def load_operations() -> dict[str, Operation]:
    """Import every operation module (they register themselves) and return the registry."""
    from happ_integ.ops import crm, http, keycrm, store  # noqa: F401

    return OPERATIONS


__all__ = ["OPERATIONS", "Operation", "Resources", "load_operations", "operation"]
