"""The NetHunt write operations against the simulated NetHunt over real HTTP, with real PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from temporalio.testing import ActivityEnvironment

from activities.context_ops import context_activities
from happ_integ.context_clients import NetHuntClient
from happ_integ.embedded.process import free_port
from happ_integ.errors import SecretMissing
from happ_integ.inline import InlineExecutor
from happ_integ.logs import CaptureSink, HandlerLogger
from happ_integ.ops import Resources, load_operations
from happ_integ.ops import models as m
from happ_integ.ops.crm import create_call_log, create_comment, update_record
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.stores.writes import WriteLedger
from simulator.nethunt import NetHuntState, create_nethunt_app
from tests.e2e.conftest import serve

INTEGRATION = "crm_writes"
FOLDER = "leads"
API_KEY = "nethunt-key-" + uuid.uuid4().hex


@dataclasses.dataclass
class Peer:
    state: NetHuntState
    resources: Resources
    record_id: str
    other_record_id: str


@pytest.fixture(scope="module")
async def peer(pg_url: str) -> AsyncIterator[Peer]:
    state = NetHuntState(api_key=API_KEY)
    state.add_folder("Leads", folder_id=FOLDER)
    record_id = state.add_record(FOLDER, {"Name": "Іван", "Phone": ["+380994829573"], "Status": "New"})
    other = state.add_record(FOLDER, {"Name": "Петро", "Phone": ["+380501112233"]})
    port = free_port()
    server, task = await serve(create_nethunt_app(state), port)
    # By their environment names, as a deployment sets them.
    env: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_NETHUNT_API_URL": f"http://127.0.0.1:{port}/api/v1/zapier",
    }
    settings = Settings(**env)
    resources = await open_resources(settings, {})
    await resources.creds(INTEGRATION).set_many(
        {"NETHUNT_EMAIL": state.email, "NETHUNT_API_KEY": API_KEY, "NETHUNT_FOLDER_ID": FOLDER}
    )
    yield Peer(state, resources, record_id, other)
    await close_resources(resources)
    server.should_exit = True
    await task


@pytest.fixture(autouse=True)
def fresh(peer: Peer) -> None:
    peer.state.comments.clear()
    peer.state.call_logs.clear()
    peer.state.clock = lambda: datetime.now(UTC)


def test_writes_are_marked_and_carry_their_landed_checks() -> None:
    ops = load_operations()
    assert {name for name, op in ops.items() if op.writes} == {
        "crm.update_record",
        "crm.create_record",
        "crm.create_comment",
        "crm.create_call_log",
        "keycrm.update_card",
    }
    assert ops["crm.update_record"].landed is not None
    assert ops["crm.create_record"].landed is None
    assert ops["crm.create_comment"].landed is not None
    assert ops["crm.create_call_log"].landed is not None
    assert ops["crm.create_comment"].result_model is m.CrmItem
    assert ops["crm.create_call_log"].input_model is m.CrmCreateCallLog


async def test_create_comment_writes_one_comment_and_answers_what_nethunt_answered(peer: Peer) -> None:
    arg = m.CrmCreateComment(integration=INTEGRATION, record_id=peer.record_id, text="Interested in a sofa")
    result = await create_comment.impl(peer.resources, arg)
    assert isinstance(result, m.CrmItem)
    [stored] = peer.state.comments
    assert result.item == stored
    assert stored["recordId"] == peer.record_id and stored["text"] == "Interested in a sofa"


async def test_create_call_log_sends_time_and_duration(peer: Peer) -> None:
    arg = m.CrmCreateCallLog(
        integration=INTEGRATION,
        record_id=peer.record_id,
        text="Outbound call",
        time="2025-03-01T10:00:00.000Z",
        duration_minutes=2,
    )
    result = await create_call_log.impl(peer.resources, arg)
    [stored] = peer.state.call_logs
    assert result.item == stored
    assert (stored["recordId"], stored["text"], stored["time"], stored["duration"]) == (
        peer.record_id,
        "Outbound call",
        "2025-03-01T10:00:00.000Z",
        2,
    )


async def test_an_echoed_secret_comes_back_as_its_name(peer: Peer) -> None:
    arg = m.CrmCreateComment(integration=INTEGRATION, record_id=peer.record_id, text=f"pasted {API_KEY}")
    result = await create_comment.impl(peer.resources, arg)
    assert peer.state.comments[0]["text"] == f"pasted {API_KEY}"
    assert API_KEY not in str(result.item)
    assert result.item["text"] == "pasted {{secret:NETHUNT_API_KEY}}"


async def test_a_write_without_a_folder_fails_before_it_writes(peer: Peer) -> None:
    await peer.resources.creds("crm_nofolder").set_many(
        {"NETHUNT_EMAIL": peer.state.email, "NETHUNT_API_KEY": API_KEY}
    )
    arg = m.CrmCreateComment(integration="crm_nofolder", record_id=peer.record_id, text="x")
    with pytest.raises(SecretMissing):
        await create_comment.impl(peer.resources, arg)
    assert peer.state.comments == []
    # A folder given by the caller needs no secret.
    with_folder = arg.model_copy(update={"folder_id": FOLDER})
    await create_comment.impl(peer.resources, with_folder)
    assert len(peer.state.comments) == 1


async def test_comment_landed_finds_the_comment_written_before(peer: Peer) -> None:
    started = datetime.now(UTC)
    arg = m.CrmCreateComment(integration=INTEGRATION, record_id=peer.record_id, text="Summary: call back")
    landed = create_comment.landed
    assert landed is not None
    assert await landed(peer.resources, arg, started) is None

    # Another record's comment with the same text, and this record's with another text, do not count.
    other = arg.model_copy(update={"record_id": peer.other_record_id})
    await create_comment.impl(peer.resources, other)
    await create_comment.impl(peer.resources, arg.model_copy(update={"text": "Other"}))
    assert await landed(peer.resources, arg, started) is None

    written = await create_comment.impl(peer.resources, arg)
    found = await landed(peer.resources, arg, started)
    assert isinstance(found, m.CrmItem)
    assert found.item == written.item and found.item["recordId"] == peer.record_id


async def test_comment_landed_looks_one_minute_before_the_first_attempt(peer: Peer) -> None:
    started = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    arg = m.CrmCreateComment(integration=INTEGRATION, record_id=peer.record_id, text="Summary")
    landed = create_comment.landed
    assert landed is not None
    # NetHunt's clock 30 s behind ours: still found. A comment from two minutes before is an older one.
    peer.state.clock = lambda: started - timedelta(minutes=2)
    await create_comment.impl(peer.resources, arg)
    assert await landed(peer.resources, arg, started) is None
    peer.state.clock = lambda: started - timedelta(seconds=30)
    await create_comment.impl(peer.resources, arg)
    found = await landed(peer.resources, arg, started)
    assert found is not None and found.item["createdAt"] == "2025-03-01T09:59:30.000Z"


async def test_call_log_landed_finds_the_call_log_written_before(peer: Peer) -> None:
    started = datetime.now(UTC)
    arg = m.CrmCreateCallLog(
        integration=INTEGRATION, record_id=peer.record_id, text="Outbound call, attempt 1", duration_minutes=1
    )
    landed = create_call_log.landed
    assert landed is not None
    assert await landed(peer.resources, arg, started) is None
    await create_call_log.impl(peer.resources, arg.model_copy(update={"text": "Outbound call, attempt 2"}))
    assert await landed(peer.resources, arg, started) is None
    written = await create_call_log.impl(peer.resources, arg)
    found = await landed(peer.resources, arg, started)
    assert found is not None and found.item == written.item


async def test_context_client_sends_a_naive_time_as_utc(peer: Peer) -> None:
    log = HandlerLogger(CaptureSink(), integration=INTEGRATION, handler="t", trace_id="t")
    crm = NetHuntClient(InlineExecutor(peer.resources, log), INTEGRATION)
    answer = await crm.create_call_log(
        peer.record_id, "Outbound call", time=datetime(2025, 3, 1, 10, 0, 5), duration_minutes=1.5
    )
    assert answer["time"] == "2025-03-01T10:00:05.000Z" and answer["duration"] == 1.5
    comment = await crm.create_comment(peer.record_id, "Hello")
    assert comment == peer.state.comments[-1]


async def test_a_retry_after_an_interrupted_attempt_writes_no_second_comment(peer: Peer) -> None:
    """The durable path: the activity's ledger entry began and never finished; the comment landed."""
    [activity_fn] = [a for a in context_activities(peer.resources) if a.__name__ == "crm_create_comment"]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"wf-{uuid.uuid4().hex}", activity_id="7")
    arg = m.CrmCreateComment(integration=INTEGRATION, record_id=peer.record_id, text="Summary: landed")
    await WriteLedger(peer.resources.pool, INTEGRATION).begin(f"{env.info.workflow_id}/7")
    await create_comment.impl(peer.resources, arg)  # the cut-short attempt's write
    result = await env.run(activity_fn, arg)
    assert len(peer.state.comments) == 1
    assert result.item == peer.state.comments[0]
    # And a retry after that answers from the ledger, without asking NetHunt.
    asked = len(peer.state.requests)
    again = await env.run(activity_fn, arg)
    assert again.item == result.item and len(peer.state.requests) == asked


async def test_update_landed_reads_the_record_back(peer: Peer) -> None:
    landed = update_record.landed
    assert landed is not None
    since = datetime.now(UTC)

    def update(fields: dict[str, Any], overwrite: bool = True) -> m.CrmUpdateRecord:
        return m.CrmUpdateRecord(
            integration=INTEGRATION, record_id=peer.record_id, fields=fields, overwrite=overwrite
        )

    peer.state.records[peer.record_id].fields["Status"] = "Interested"
    found = await landed(peer.resources, update({"Status": "Interested"}), since)
    assert found is not None and found.record["fields"]["Status"] == "Interested"
    assert await landed(peer.resources, update({"Status": "Called"}), since) is None
    # An update that adds to a field cannot be told from one that did not happen: it is sent again.
    assert await landed(peer.resources, update({"Status": "Interested"}, overwrite=False), since) is None
    peer.state.records[peer.record_id].fields["Status"] = "New"
