"""Context operations: one name, one input model, one result model, one implementation.

    result = await OPERATIONS["db.insert"].impl(resources, DbInsert(integration="sofa", table="calls", row={...}))

Inline runs call `impl` directly; the worker registers each operation as a Temporal activity of
the same name (`activities/`), so a durable run's history reads like the handler's code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from happ_integ.ops.resources import Resources

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    name: str
    input_model: type[BaseModel]
    result_model: type[BaseModel]
    impl: Callable[[Resources, Any], Awaitable[Any]]


OPERATIONS: dict[str, Operation] = {}


def operation(
    name: str, input_model: type[In], result_model: type[Out]
) -> Callable[[Callable[[Resources, In], Awaitable[Out]]], Callable[[Resources, In], Awaitable[Out]]]:
    def register(fn: Callable[[Resources, In], Awaitable[Out]]) -> Callable[[Resources, In], Awaitable[Out]]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} is registered twice")
        OPERATIONS[name] = Operation(name, input_model, result_model, fn)
        return fn

    return register


def load_operations() -> dict[str, Operation]:
    """Import every operation module (they register themselves) and return the registry."""
    from happ_integ.ops import crm, http, store  # noqa: F401

    return OPERATIONS


__all__ = ["OPERATIONS", "Operation", "Resources", "load_operations", "operation"]
