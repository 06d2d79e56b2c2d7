"""`Operation[In, Out]`: a context operation's typed handle, and the registry every one joins.

    @operation("db.insert", m.DbInsert, m.Row, local=True)
    async def db_insert(res: Resources, arg: m.DbInsert) -> m.Row: ...

The operation modules (`happ_integ.ops.store`, `crm`, `keycrm`, `http`) import this one; the
package's `__init__` imports them, so every operation is registered once `happ_integ.ops` is.
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
