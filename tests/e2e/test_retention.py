"""Transcripts and audio are not kept forever: `setup` gives every integration with a call flow a
`retention` config and a daily Schedule whose run deletes older documents. Fired here through the
Schedule itself, against the dev server and PostgreSQL, with a worker serving the purge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from temporalio.client import Client, ScheduleHandle
from temporalio.worker import Worker

from activities.retention import RetentionActivities
from control.schedules import setup_integration
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.integration import Integration
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.stores.calls import CallStore
from happ_integ.stores.retention import RetentionReport, retention_schedule_id
from tests.workflows.harness import call_flow_integration
from workflows.retention import DocumentRetention


@dataclass
class Served:
    integration: Integration
    resources: Resources
    client: Client
    schedule: ScheduleHandle

    @property
    def name(self) -> str:
        return self.integration.name

    async def documents(self) -> set[str]:
        rows = await self.resources.pool.fetch(f"SELECT id FROM {self.name}_call_documents")
        return {r["id"] for r in rows}

    async def store(self, key: str, days_old: int) -> str:
        calls = CallStore(self.resources.pool, self.name)
        document = await calls.store_document(
            "transcript" if key != "audio" else "audio",
            key=key,
            body={"transcript": [{"role": "user", "message": "Так, цікаво"}]},
            data=b"\x00audio" if key == "audio" else None,
            call_id=f"c_{key}",
        )
        await self.resources.pool.execute(
            f"UPDATE {self.name}_call_documents SET created_at = now() - make_interval(days => $2) WHERE id = $1",
            document,
            days_old,
        )
        return document

    async def fire(self) -> RetentionReport:
        """Trigger the Schedule and wait for the run it starts."""
        before = len((await self.schedule.describe()).info.recent_actions)
        await self.schedule.trigger()
        for _ in range(300):
            actions = (await self.schedule.describe()).info.recent_actions
            if len(actions) > before:
                started = actions[-1].action
                return await self.client.get_workflow_handle(
                    started.workflow_id,  # type: ignore[attr-defined]
                    result_type=RetentionReport,
                ).result()
            await asyncio.sleep(0.1)
        pytest.fail("the retention schedule recorded no run within 30 s")


@pytest.fixture
async def served(pg_url: str, temporal_client: Client) -> AsyncIterator[Served]:
    integration = call_flow_integration(f"ret{uuid.uuid4().hex[:8]}")
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=Fernet.generate_key().decode())
    resources = await open_resources(settings, {integration.name: integration})
    report = await setup_integration(resources, temporal_client, integration)
    sid = retention_schedule_id(integration.name)
    assert report.schedules == {sid: "created"} and "retention" in report.configs_created
    handle = temporal_client.get_schedule_handle(sid)
    # Only this worker's purge: the framework's own workflow and activity, no handler registry.
    async with Worker(
        temporal_client,
        task_queue=integration.task_queue,
        workflows=[DocumentRetention],
        activities=[RetentionActivities(resources).purge_documents],
    ):
        yield Served(integration, resources, temporal_client, handle)
    await handle.delete()
    await close_resources(resources)


async def test_the_daily_schedule_deletes_old_documents_and_keeps_recent_ones(served: Served) -> None:
    described = await served.schedule.describe()
    assert described.schedule.action.workflow == "DocumentRetention"  # type: ignore[union-attr]
    upcoming = described.info.next_action_times[:2]
    assert (upcoming[1] - upcoming[0]).total_seconds() == 24 * 3600, "once a day"

    old = {await served.store("old", 120), await served.store("audio", 91)}
    recent = {await served.store("recent", 30), await served.store("today", 0)}
    assert await served.documents() == old | recent

    report = await served.fire()  # the default: 90 days
    assert report.documents_days == 90 and report.deleted == 2
    assert await served.documents() == recent, "older than 90 days: deleted; the rest kept"

    # Per integration, read at each run: a shorter retention takes the next run further.
    config = served.resources.config(served.name)
    await config.set("retention", {"documents_days": 7})
    report = await served.fire()
    assert report.deleted == 1 and await served.documents() == {"transcript:today"}

    # Kept forever only when said so.
    await config.set("retention", {"documents_days": None})
    await served.store("ancient", 3000)
    report = await served.fire()
    assert report.documents_days is None and report.deleted == 0
    assert await served.documents() == {"transcript:today", "transcript:ancient"}


async def test_the_daily_run_forgets_dials_no_cap_reads_any_more(served: Served) -> None:
    """contact_policy's caps look back a day: dials older than two days go, younger ones stay,
    whatever the documents' retention (here: kept forever)."""
    await served.resources.config(served.name).set("retention", {"documents_days": None})
    attempts = served.resources.contact_attempts()
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    policy = ContactPolicy(max_attempts_per_day=50, min_minutes_between_attempts=0)
    now = datetime.now(UTC)
    for n, age in enumerate((timedelta(days=3), timedelta(days=2, minutes=1), timedelta(hours=47))):
        assert (await attempts.take_attempt(phone, served.name, f"c_{n}", 1, policy, now=now - age)).allowed
    report = await served.fire()
    assert report.contact_attempts_deleted >= 2  # other tests' old dials may go too
    left = await attempts.attempts_of(phone, since=now - timedelta(days=30))
    assert [a.call_id for a in left] == ["c_2"]


async def test_setup_again_keeps_the_schedule(served: Served, temporal_client: Client) -> None:
    report = await setup_integration(served.resources, temporal_client, served.integration)
    assert report.schedules == {retention_schedule_id(served.name): "updated"}, "not deleted as undeclared"
