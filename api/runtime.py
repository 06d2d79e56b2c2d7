"""What the gateway holds for its lifetime: settings, integrations, resources, a Temporal client.

The PostgreSQL pool opens lazily and the Temporal client reconnects on demand, so the API starts
and answers 503 naming the dependency while either is down, then recovers by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from temporalio.client import Client

from happ_integ.errors import DependencyUnavailable
from happ_integ.integration import Integration
from happ_integ.logs import LogSink, make_sink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.temporal import connect_settings

RECONNECT_PAUSE_SECONDS = 3.0


class ApiRuntime:
    """The gateway's process state (`app.state.runtime`, `RuntimeDep` in routes); not the Temporal
    SDK's `Runtime`, which `happ_integ.telemetry.temporal_runtime` makes for a worker's metrics."""

    def __init__(
        self, settings: Settings, integrations: Mapping[str, Integration], sink: LogSink | None = None
    ) -> None:
        self.settings = settings
        self.integrations = dict(integrations)
        # `is not None`: an empty CaptureSink is falsy (it has a length) but is still the sink asked for.
        self.sink = sink if sink is not None else make_sink(settings.log_format)
        self._resources: Resources | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0

    async def start(self) -> None:
        self._resources = await open_resources(
            self.settings, self.integrations, lazy_pool=True, max_pool=20, change_feed=True
        )

    async def stop(self) -> None:
        if self._resources is not None:
            await close_resources(self._resources)

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            raise DependencyUnavailable("PostgreSQL", "the database pool is not open")
        return self._resources

    @property
    def resources_or_none(self) -> Resources | None:
        return self._resources

    async def temporal(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
            return self._client

    async def _connect(self) -> Client:
        address = self.settings.temporal_address
        if not address:
            raise DependencyUnavailable("Temporal", "TEMPORAL_ADDRESS is not set")
        # After a failed connect, callers in the next few seconds are answered at once instead of
        # each queueing for its own 5 s attempt.
        if time.monotonic() < self._down_until:
            raise DependencyUnavailable("Temporal", f"Temporal is unreachable at {address}")
        try:
            return await asyncio.wait_for(connect_settings(self.settings), 5)
        except Exception as exc:  # any connect failure means the same thing to a caller
            self._down_until = time.monotonic() + RECONNECT_PAUSE_SECONDS
            raise DependencyUnavailable(
                "Temporal", f"Temporal is unreachable at {address}: {type(exc).__name__}"
            ) from None

    async def temporal_or_none(self) -> Client | None:
        try:
            return await self.temporal()
        except DependencyUnavailable:
            return None
