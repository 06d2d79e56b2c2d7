"""`Executor`: what runs a handler's context operations, in-process or as Temporal activities.

    class InlineExecutor:           # happ_integ.inline: calls each operation's implementation
        mode = "inline"
        async def call(self, op: Operation[In, Out], arg: In) -> Out: ...

`happ_integ.inline.InlineExecutor` and `happ_integ.durable.DurableExecutor` are the two; the
context's clients (`happ_integ.context_clients`) and the `Context` itself (`happ_integ.context`)
take one, so neither of those modules needs the other's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel

from happ_integ.ops.operation import Operation

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class Executor(Protocol):
    """Runs context operations: in-process (inline) or as Temporal activities (durable)."""

    mode: Literal["inline", "durable"]

    async def call(self, op: Operation[In, Out], arg: In) -> Out: ...

    def now(self) -> datetime: ...

    def uuid(self) -> str: ...
