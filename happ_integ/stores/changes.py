"""What every process may keep in memory of PostgreSQL, and how it hears that it changed.

    feed = ChangeFeed(dsn)
    await feed.start()                       # one LISTEN connection per process
    rows = await feed.cached("config", "sofa", load)   # load() runs once, until sofa's config changes
    await feed.stop()

`happ_config` and `happ_secrets` carry a trigger (`happ_notify_change`, in the core schema, which
the feed makes sure of when it connects) that
sends `NOTIFY happ_changes, '<table>:<integration>'` with every committed change, whoever makes it
(the API, `happ config set`, a hand-written UPDATE). A feed forgets an integration's cached rows
of that table when the notification comes, so every API replica and worker reads the new value
on its next use: within the notification's delay, milliseconds on one machine.

A cached value is served only while the feed's connection is up. When it drops (PostgreSQL
restarted, the network cut), notifications sent meanwhile are lost, so the feed forgets
everything and reads go to PostgreSQL until it has listened again. A load that started before an
invalidation never fills the cache after it (a generation counter per entry), so a reader
racing a writer cannot put back the old value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from happ_integ.stores.schema import CORE_SCHEMA_SQL, SCHEMA_LOCK_KEY

T = TypeVar("T")
log = logging.getLogger("happ.db")

CHANNEL = "happ_changes"
# How the feed's connection shows in pg_stat_activity.
APPLICATION_NAME = "happ-change-feed"
# How long a lost LISTEN connection waits before it is opened again (and again, while it fails).
RECONNECT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 5.0


class ChangeFeed:
    """A process's cache of config and secret rows, kept true by `LISTEN happ_changes`."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._values: dict[tuple[str, str], Any] = {}
        self._generations: dict[tuple[str, str], int] = {}
        self._connection: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self.invalidations = 0  # how many notifications were applied (for tests and metrics)

    @property
    def live(self) -> bool:
        """True while the feed listens: only then is anything served from memory."""
        return self._connection is not None and not self._connection.is_closed()

    async def start(self) -> None:
        """Listen in the background; a PostgreSQL out of reach now is tried again until it answers."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_listening(), name="happ-change-feed")

    async def stop(self) -> None:
        self._stopping = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await self._close()

    async def cached(self, table: str, integration: str, load: Callable[[], Awaitable[T]]) -> T:
        """`load()`'s answer for this table and integration, from memory while it has not changed."""
        key = (table, integration)
        if self.live and key in self._values:
            return self._values[key]  # type: ignore[no-any-return]
        generation = self._generations.get(key, 0)
        value = await load()
        # Kept only if nothing changed while it was read, and only while notifications can come.
        if self.live and self._generations.get(key, 0) == generation:
            self._values[key] = value
        return value

    def forget(self, table: str, integration: str) -> None:
        key = (table, integration)
        self._values.pop(key, None)
        self._generations[key] = self._generations.get(key, 0) + 1
        self.invalidations += 1

    def forget_all(self) -> None:
        for key in list(self._generations) + list(self._values):
            self._generations[key] = self._generations.get(key, 0) + 1
        self._values.clear()

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        table, _, integration = payload.partition(":")
        self.forget(table, integration)

    def _on_termination(self, _conn: Any) -> None:
        self.forget_all()
        self._lost.set()

    async def _keep_listening(self) -> None:
        while not self._stopping:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    command_timeout=CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                # A database made before the trigger existed gets it now: a cache is only as true
                # as the notifications that end it.
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
                    await connection.execute(CORE_SCHEMA_SQL)
                connection.add_termination_listener(self._on_termination)
                await connection.add_listener(CHANNEL, self._on_notification)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if connection is not None:
                    connection.terminate()
                log.warning("the change feed cannot listen (%s): reading from PostgreSQL", type(exc).__name__)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            # What was cached before this connection listened may have changed unheard.
            self.forget_all()
            self._lost.clear()
            self._connection = connection
            await self._watch(connection)
            await self._close()
            self.forget_all()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _watch(self, connection: asyncpg.Connection) -> None:
        """Return once the connection is lost: its termination, or a ping it cannot answer (a silent
        server sends no termination; a cache is not served from a connection that cannot hear)."""
        while not connection.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=RECONNECT_SECONDS * 5)
                return
            try:
                await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                self.forget_all()
                return

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()
