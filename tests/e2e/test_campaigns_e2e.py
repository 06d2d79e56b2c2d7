"""Campaigns end to end on the dev stack: the routes over real HTTP, worker processes of their own,
the simulated voice assistant and CRM playing every call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from simulator.calls import Play
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(600)
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url, tmp_path_factory.mktemp("campaign-logs"), Play.answered(30, talk_seconds=0.3)
    )
    stack.start_worker()
    try:
        yield stack
    finally:
        await stack.close()


async def campaign(stack: CallStack, campaign_id: str) -> dict[str, Any]:
    resp = await stack.http.get(f"/{stack.integration}/campaigns/{campaign_id}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def until_campaign(stack: CallStack, campaign_id: str, status: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (now := await campaign(stack, campaign_id))["status"] != status:
        assert time.monotonic() < deadline, f"{now}\n{stack.worker_logs()}"
        await asyncio.sleep(0.3)
    return now


async def test_a_small_campaign_runs_to_the_end_and_reports_every_recipient(stack: CallStack) -> None:
    numbers = [phone(5000 + n) for n in range(12)]
    stack.add_leads(numbers)
    body = {
        "name": "Webinar",
        "max_concurrency": 2,
        "recipients": [
            *(
                {"phone_number": n, "id": f"lead-{i}", "variables": {"webinar": "12 Dec"}}
                for i, n in enumerate(numbers)
            ),
            {"phone_number": "12"},
            {"phone_number": numbers[0], "id": "lead-0"},
        ],
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["accepted"] == 12
    assert [(r["index"], r["id"]) for r in created["rejected"]] == [(12, None), (13, "lead-0")]
    done = await until_campaign(stack, created["campaign_id"], "finished", 120)
    assert done["counts"]["completed"] == 12, done
    assert done["total"] == 12
    resp = await stack.http.get(
        f"/{stack.integration}/campaigns/{created['campaign_id']}/report.csv", headers=AUTH
    )
    assert resp.status_code == 200
    lines = resp.text.strip().splitlines()
    assert len(lines) == 13
    assert lines[0].startswith("id,number,status")
