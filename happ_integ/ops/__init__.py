"""Context operations: each is one typed handle, defined once where it is implemented.

    @operation("db.insert", m.DbInsert, m.Row, local=True)
    async def db_insert(res: Resources, arg: m.DbInsert) -> m.Row: ...

    row = await executor.call(store.db_insert, m.DbInsert(integration="sofa", table="calls", row={...}))

`operation` registers the implementation and returns an `Operation[In, Out]` in its place: its
name, input and result models, and whether a durable run makes it a local activity. Executors
take the handle (`happ_integ.executor.Executor.call`), so mypy checks the argument and the result
at every call site. Inline runs call `impl` directly; the worker registers each operation as a
Temporal activity of the same name (`activities.context_ops`), so a durable run's history reads
like the handler's code.
"""

from __future__ import annotations

from typing import Any

# The operation modules register themselves as they are imported.
from happ_integ.ops import crm, http, keycrm, store
from happ_integ.ops.operation import OPERATIONS, Operation, operation
from happ_integ.ops.resources import Resources


def load_operations() -> dict[str, Operation[Any, Any]]:
    """Every registered operation by name (all of them: the package imported its modules)."""
    return OPERATIONS


__all__ = [
    "OPERATIONS",
    "Operation",
    "Resources",
    "crm",
    "http",
    "keycrm",
    "load_operations",
    "operation",
    "store",
]
