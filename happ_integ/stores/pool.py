"""The asyncpg pool: JSON and JSONB decoded to Python values, and a deadline on every wait.

    pool = await create_pool(dsn, timeout_seconds=5)   # HAPP_DB_TIMEOUT_SECONDS
    await pool.fetchval("SELECT 1")                    # DependencyUnavailable("PostgreSQL") after 5 s of silence

A PostgreSQL that refuses connections fails fast. One that stops answering (a frozen server, a
network that drops packets) keeps every connection open and silent, and without a deadline each
request would wait on it for good. So:

- waiting for a connection (opening one included) and each statement get `timeout_seconds`; past
  that the caller gets `DependencyUnavailable("PostgreSQL")`: 503 with Retry-After at the gateway,
  another attempt in an activity;
- a statement that is interrupted (past its deadline, or its task cancelled by a caller's own
  deadline, as agent-init's) closes its connection at once. asyncpg would keep it until PostgreSQL
  acknowledged a cancel request: in the ROLLBACK of an open transaction, then again in the
  release, up to `command_timeout` each, so a silent server held a cancelled caller for half a
  minute. The cancel request still goes out (a server that answers stops the statement), the
  server rolls back the closed session's transaction, and the pool opens a fresh connection
  when one is next needed: a connection is never handed out again in an unknown state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolAcquireContext
from asyncpg.transaction import Transaction

from happ_integ.errors import DependencyUnavailable

T = TypeVar("T")

# HAPP_DB_TIMEOUT_SECONDS' default: well inside the 10 s a webhook sender waits, so a request
# that touches a silent database is answered 503 + Retry-After before the sender gives up.
DEFAULT_TIMEOUT_SECONDS = 5.0

# Cancel requests asyncpg sent for interrupted statements, kept alive here once their connection
# is closed (closing it would cancel them); each ends within its own command_timeout.
_CANCEL_REQUESTS: set[asyncio.Task[Any]] = set()


def _no_answer(what: str) -> DependencyUnavailable:
    return DependencyUnavailable("PostgreSQL", f"PostgreSQL is unavailable: {what}")


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _interrupted(exc_type: type[BaseException] | None) -> bool:
    return exc_type is not None and issubclass(exc_type, TimeoutError | asyncio.CancelledError)


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that is closed when a statement on it is interrupted, and returned
    without asyncpg's reset query (`RESET ALL`, `UNLISTEN *`, `CLOSE ALL`, advisory unlocks): a
    round trip to PostgreSQL on every release, for session state the stores never create (no SET,
    LISTEN, cursors or session advisory locks; the schema lock is a transaction lock). An open
    transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""

    async def _guarded(self, statement: Awaitable[T]) -> T:
        try:
            return await statement
        except TimeoutError as exc:  # asyncpg's command_timeout (or a statement's own timeout)
            await self._drop()
            raise _no_answer("no answer to a statement in time") from exc
        except asyncio.CancelledError:  # the caller's deadline, a cancelled activity, shutdown
            await self._drop()
            raise

    async def _drop(self) -> None:
        """Close the connection now, leaving the cancel request asyncpg sends for the interrupted
        statement on its way (so a server that still answers stops it)."""
        try:
            # asyncpg schedules that request as the statement is interrupted; one turn of the loop
            # lets it take the backend's id, which closing the connection would take away.
            await asyncio.sleep(0)
        finally:
            pending = getattr(self, "_cancellations", None)
            if pending:
                for task in pending:  # closing would cancel them
                    _CANCEL_REQUESTS.add(task)
                    task.add_done_callback(_CANCEL_REQUESTS.discard)
                pending.clear()
            self.terminate()

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().execute(query, *args, **kwargs))

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().executemany(command, args, **kwargs))

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().fetch(query, *args, **kwargs))

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().fetchrow(query, *args, **kwargs))

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().fetchval(query, *args, **kwargs))

    async def fetchmany(self, query: str, args: Any, **kwargs: Any) -> Any:
        return await self._guarded(super().fetchmany(query, args, **kwargs))

    async def prepare(self, query: str, **kwargs: Any) -> Any:
        return await self._guarded(super().prepare(query, **kwargs))

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, deferrable: bool = False
    ) -> Transaction:
        if self.is_closed():
            raise asyncpg.InterfaceError("cannot start a transaction: the connection is closed")
        return _Transaction(self, isolation, readonly, deferrable)


class _Transaction(Transaction):  # type: ignore[misc]
    """`async with conn.transaction()` that lets the caller's error through when an interrupted
    statement closed the connection: the session is gone and PostgreSQL rolled its transaction
    back, so asyncpg's ROLLBACK would only replace that error with "connection is closed"."""

    __slots__ = ()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if exc_type is not None and self._connection.is_closed():
            return
        await super().__aexit__(exc_type, exc, tb)


class _Acquire(PoolAcquireContext):  # type: ignore[misc]
    """`async with pool.acquire() as conn`: a block left by a timeout or a cancellation closes its
    connection (whatever ran on it: a prepared statement too), and a timeout is PostgreSQL's."""

    __slots__ = ()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if _interrupted(exc_type):
            connection = getattr(self.connection, "_con", None)  # None once the proxy is released
            if isinstance(connection, _Connection):
                await connection._drop()
        await super().__aexit__(exc_type, exc, tb)  # at once for a closed connection
        if exc_type is not None and issubclass(exc_type, TimeoutError):
            raise _no_answer("no answer in time") from exc


class _Pool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool with a default deadline on acquire (which asyncpg also applies to the
    release) and on close."""

    __slots__ = ("_deadline",)

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def acquire(self, *, timeout: float | None = None) -> _Acquire:
        return _Acquire(self, timeout)

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's signature)
        # Both `async with pool.acquire()` and `await pool.acquire()` come here, as do execute,
        # fetch, fetchrow and fetchval on the pool itself.
        timeout = self._deadline if timeout is None else timeout
        try:
            return await super()._acquire(timeout)
        except TimeoutError as exc:
            raise _no_answer(f"no connection within {timeout:g} s") from exc

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        # The release rolls back a transaction left open; on a silent server that times out.
        try:
            await super().release(connection, timeout=timeout)
        except TimeoutError as exc:
            raise _no_answer("no answer to the rollback on release") from exc

    async def close(self) -> None:
        # A silent server never acknowledges the goodbye: a process that stops must not wait on it.
        try:
            async with asyncio.timeout(2 * self._deadline):
                await super().close()
        except TimeoutError:
            self.terminate()


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> asyncpg.Pool:
    """`timeout_seconds`: for a connection (waiting for one, opening one) and for each statement."""
    pool = _Pool(
        dsn,
        deadline=timeout_seconds,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        loop=None,
        connection_class=_Connection,
        record_class=asyncpg.Record,
        timeout=timeout_seconds,  # opening a connection
        command_timeout=timeout_seconds,  # each statement, unless it passes its own `timeout`
    )
    await pool
    return pool
