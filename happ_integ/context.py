"""The handler context: everything a handler may touch, the same in both run modes.

    async def handler(ctx: Context[Payload]) -> Response:
        secrets = await ctx.creds.get()
        rows = await ctx.db.select("calls", {"status": "initiated"}, limit=10)
        cached = await ctx.cache.cache_aside(f"crm:{ctx.payload.id}", 3600, lambda: load())
        resp = await ctx.http.post(url, json={...}, headers={"Authorization": f"Bearer {secrets.API_TOKEN}"})

Every client method is one *operation* (`db.insert`, `cache.get`, `http.request`,
`crm.search_records`, `keycrm.find_buyers`, …), a typed handle from `happ_integ.ops` handed to an
`Executor`: inline it runs in-process, durably it is a Temporal activity. `current()` returns the
running context.
"""

from __future__ import annotations

import contextvars
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from happ_integ.context_clients import (
    CacheClient,
    ConfigClient,
    CredsClient,
    DbClient,
    HttpClient,
    KeyCrmClient,
    NetHuntClient,
)
from happ_integ.executor import Executor

if TYPE_CHECKING:
    from happ_integ.logs import HandlerLogger
    from happ_integ.settings import Settings
    from happ_integ.steps import StepRunner

P = TypeVar("P", bound=BaseModel)
In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class Context(Generic[P]):
    """What a handler receives. Build one with `happ_integ.runner`; handlers only read it."""

    def __init__(
        self,
        *,
        payload: P,
        executor: Executor,
        integration_name: str,
        handler_name: str,
        trace_id: str,
        log: HandlerLogger,
        step: StepRunner,
        env: Settings | None,
    ) -> None:
        self.payload = payload
        self.integration_name = integration_name
        self.handler_name = handler_name
        self.trace_id = trace_id
        self.mode = executor.mode
        self.env = env
        self.log = log
        self.step = step
        self.db = DbClient(executor, integration_name)
        self.cache = CacheClient(executor, integration_name)
        self.config = ConfigClient(executor, integration_name)
        self.creds = CredsClient(executor, integration_name)
        self.http = HttpClient(executor, integration_name)
        self._executor = executor

    def nethunt(self, email: Any = None, api_key: Any = None) -> NetHuntClient:
        return NetHuntClient(self._executor, self.integration_name, email, api_key)

    def keycrm(self, api_key: Any = None, *, per_minute: int | None = None) -> KeyCrmClient:
        """KeyCRM; `api_key` a secret reference (default: the KEYCRM_API_KEY secret), `per_minute`
        the key's request budget shared by every worker (default 60)."""
        return KeyCrmClient(self._executor, self.integration_name, api_key, per_minute=per_minute)

    def now(self) -> datetime:
        """Timezone-aware UTC now; deterministic inside a durable run."""
        return self._executor.now()

    def uuid(self) -> str:
        """A random UUID4 string; deterministic inside a durable run."""
        return self._executor.uuid()


_current: contextvars.ContextVar[Context[Any]] = contextvars.ContextVar("happ_context")


def current() -> Context[Any]:
    """The context of the handler running now."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "no handler is running: happ_integ.context.current() works only inside a handler"
        ) from None


def set_current(ctx: Context[Any]) -> contextvars.Token[Context[Any]]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[Context[Any]]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # A workflow evicted mid-run (worker shutdown) has its coroutine closed from another
        # context; that context never saw the token, and has nothing to restore.
        pass
