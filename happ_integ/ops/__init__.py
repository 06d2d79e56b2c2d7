"""Context operations: each is one typed handle, defined once where it is implemented.

    @operation("db.insert", m.DbInsert, m.Row, local=True)
    async def db_insert(res: Resources, arg: m.DbInsert) -> m.Row: ...

    row = await executor.call(store.db_insert, m.DbInsert(integration="sofa", table="calls", row={...}))

`operation` registers the implementation and returns an `Operation[In, Out]` in its place: its
name, input and result models, and whether a durable run makes it a local activity. Executors
take the handle (`happ_integ.context.Executor.call`), so mypy checks the argument and the result
at every call site. Inline runs call `impl` directly; the worker registers each operation as a
Temporal activity of the same name (`activities.context_ops`), so a durable run's history reads
like the handler's code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from happ_integ.ops.resources import Resources

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class Operation(Generic[In, Out]):
    name: str
    input_model: type[In]
    result_model: type[Out]
    impl: Callable[[Resources, In], Awaitable[Out]]
    # A durable run makes it a local activity: in the worker that runs the workflow, a marker in
    # its history, no round trip through the server. For the framework's quick PostgreSQL
    # operations; calls to the outside world stay regular activities, each attempt in the Web UI.
    local: bool = False
    # A write to an outside service: a durable run makes it once, however often its activity is
    # tried (see activities.context_ops). After an attempt that was cut short (a worker killed
    # mid-request), `landed` tells whether its write reached the service after all: the answer
    # it would have given, or None.
    writes: bool = False
    landed: Callable[[Resources, In, datetime], Awaitable[Out | None]] | None = None


OPERATIONS: dict[str, Operation[Any, Any]] = {}


def operation(
    name: str,
    input_model: type[In],
    result_model: type[Out],
    *,
    local: bool = False,
    writes: bool = False,
    landed: Callable[[Resources, In, datetime], Awaitable[Out | None]] | None = None,
) -> Callable[[Callable[[Resources, In], Awaitable[Out]]], Operation[In, Out]]:
    def register(fn: Callable[[Resources, In], Awaitable[Out]]) -> Operation[In, Out]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} is registered twice")
        handle = Operation(name, input_model, result_model, fn, local, writes, landed)
        OPERATIONS[name] = handle
        return handle

    return register


def load_operations() -> dict[str, Operation[Any, Any]]:
    """Import every operation module (they register themselves) and return the registry."""
    from happ_integ.ops import crm, http, keycrm, store  # noqa: F401

    return OPERATIONS


__all__ = ["OPERATIONS", "Operation", "Resources", "load_operations", "operation"]
