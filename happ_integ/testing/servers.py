"""What an `IntegrationTestEnv` stands on: a database of its own, the simulated peers over HTTP, and
a Temporal server for durable runs. Each is an async context manager that leaves nothing behind.

    async with postgres_server(None) as server_url, own_database(server_url, ["acme"]) as url: ...
    async with served(create_simulator_app(states)) as base_url: ...
    async with temporal(None, payload_key) as (client, address): ...
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvicorn
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from happ_integ.codec import data_converter
from happ_integ.dev import EmbeddedServer
from happ_integ.embedded import EmbeddedPostgres, test_server_path
from happ_integ.embedded.process import free_port
from happ_integ.stores.db import quote_ident
from happ_integ.stores.query_roles import role_name
from happ_integ.temporal import connect_client, search_attribute_kinds

_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


@asynccontextmanager
async def postgres_server(url: str | None) -> AsyncIterator[str]:
    """`url` as it is, or an embedded PostgreSQL in a temporary folder while the block runs."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="happ-test-pg-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pg", port=free_port(), fsync=False)
        await asyncio.to_thread(server.start)
        try:
            yield server.url
        finally:
            await asyncio.to_thread(server.stop)


def with_database(url: str, database: str) -> str:
    """`url` naming another database on the same server (user, host and options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@asynccontextmanager
async def own_database(server_url: str, integrations: Iterable[str]) -> AsyncIterator[str]:
    """A fresh database on `server_url`'s server, dropped afterwards with the roles `ctx.db.query`
    made for these integrations in it: nothing an env stores (secrets sealed by its own key, configs,
    tables, KeyCRM pacing) meets another test's."""
    name = f"happ_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    try:
        yield with_database(server_url, name)
    finally:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            for integration in integrations:
                await conn.execute(f"DROP ROLE IF EXISTS {quote_ident(role_name(integration, name))}")
        finally:
            await conn.close()


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """An ASGI app over real HTTP on a free loopback port; yields its base URL."""
    port = free_port()
    server = EmbeddedServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # it failed to start: its error, not a hang
            raise RuntimeError(f"the simulated peers did not start on port {port}")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def temporal(address: str | None, payload_key: str) -> AsyncIterator[tuple[Client, str]]:
    """A client of the Temporal at `address`, or of a time-skipping test server of its own (timers
    and retry backoffs pass at once while a run is awaited); yields the client and the address."""
    if address is not None:
        yield await connect_client(address, payload_key=payload_key), address
        return
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=data_converter(payload_key)
    )
    try:
        # Runs set the project's search attributes; this server knows none by itself.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={n: _INDEXED[kind] for n, kind in search_attribute_kinds().items()},
            )
        )
        yield env.client, env.client.service_client.config.target_host
    finally:
        await env.shutdown()
