"""The keycrm.* operations against the KeyCRM simulator over real HTTP, with real PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from temporalio.testing import ActivityEnvironment

from activities.context_ops import context_activities
from happ_integ.context_clients import CredsClient, KeyCrmClient
from happ_integ.embedded.process import free_port
from happ_integ.errors import SecretMissing, UpstreamError, ValidationFailed
from happ_integ.inline import InlineExecutor
from happ_integ.integration import Integration
from happ_integ.logs import CaptureSink, HandlerLogger
from happ_integ.ops import Resources, load_operations
from happ_integ.ops import keycrm as keycrm_ops
from happ_integ.ops import models as m
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.stores.pacing import pacing_key
from happ_integ.stores.writes import WriteLedger
from simulator.keycrm import DEMO_PHONE, KeyCrmState, create_keycrm_app, seed_demo
from tests.e2e.conftest import serve

INTEGRATION = "keycrm_ops"
API_KEY = "keycrm-key-" + uuid.uuid4().hex


@dataclasses.dataclass
class Peer:
    state: KeyCrmState
    resources: Resources
    ids: dict[str, int]
    note_field: str
    select_field: str
    buyer_field: str
    other_card: int


@pytest.fixture(scope="module")
async def peer(pg_url: str) -> AsyncIterator[Peer]:
    state = KeyCrmState(api_key=API_KEY)
    ids = seed_demo(state)
    note_field = state.add_custom_field("lead", "Last call")
    select_field = state.add_custom_field("lead", "Interest", "select")
    buyer_field = state.add_custom_field("client", "City")
    state.buyers[ids["buyer"]]["custom_fields"][buyer_field] = "Київ"
    _, (other_status,) = state.add_pipeline("Retention", ["Call back"])
    other_card = state.add_card(
        other_status, {"full_name": "Іван", "phone": DEMO_PHONE, "client_id": ids["buyer"]}
    )
    stranger = state.add_buyer("Петро", "+380501112233")
    state.add_card(ids["new"], {"full_name": "Петро", "phone": "+380501112233", "client_id": stranger})
    port = free_port()
    server, task = await serve(create_keycrm_app(state), port)
    env: dict[str, Any] = {
        "DATABASE_URL": pg_url,
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_KEYCRM_API_URL": f"http://127.0.0.1:{port}/v1",
    }
    resources = await open_resources(
        Settings(**env), {INTEGRATION: Integration(INTEGRATION, secrets=["KEYCRM_API_KEY"])}
    )
    await resources.creds(INTEGRATION).set_many({"KEYCRM_API_KEY": API_KEY})
    yield Peer(state, resources, ids, note_field, select_field, buyer_field, other_card)
    await close_resources(resources)
    server.should_exit = True
    await task


@pytest.fixture(autouse=True)
def fresh(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A high budget keeps these tests quick; the pacing test names its own.
    monkeypatch.setattr(keycrm_ops, "REQUESTS_PER_MINUTE", 6000)
    card = peer.state.cards[peer.ids["card"]]
    saved = {"status_id": card["status_id"], "pipeline_id": card["pipeline_id"], "note": None}
    yield
    card.update(saved)
    card["custom_fields"] = {}


def update(peer: Peer, **values: Any) -> m.KeyCrmUpdateCard:
    return m.KeyCrmUpdateCard(integration=INTEGRATION, card_id=peer.ids["card"], **values)


def test_the_operations_are_registered_and_only_the_update_writes() -> None:
    ops = load_operations()
    names = {"keycrm.find_buyers", "keycrm.find_cards", "keycrm.get_card", "keycrm.update_card"}
    assert names <= set(ops)
    assert {name for name in names if ops[name].writes} == {"keycrm.update_card"}
    assert ops["keycrm.update_card"].landed is not None
    assert ops["keycrm.update_card"].result_model is m.KeyCrmUpdated
    assert ops["keycrm.find_cards"].input_model is m.KeyCrmFindCards


async def test_find_buyers_sends_digits_and_includes_company_manager_and_fields(peer: Peer) -> None:
    arg = m.KeyCrmFindBuyers(integration=INTEGRATION, phone=DEMO_PHONE)
    result = await keycrm_ops.find_buyers.impl(peer.resources, arg)
    [buyer] = result.buyers
    assert buyer["id"] == peer.ids["buyer"] and buyer["full_name"] == "Іван Петренко"
    assert buyer["company"]["name"] == "ТОВ Компанія"
    assert buyer["manager"]["full_name"] == "Олена Коваль"
    assert buyer["custom_fields"] == [
        {"id": peer.state.custom_fields[peer.buyer_field]["id"], "uuid": peer.buyer_field, "name": "City"}
        | {"type": "text", "value": "Київ"}
    ]
    sent = peer.state.requests_to("GET", "/v1/buyer")[-1]
    assert sent.query == {
        "filter[buyer_phone]": "380994829573",
        "limit": "15",
        "include": "company,manager,custom_fields",
    }
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    nobody = await keycrm_ops.find_buyers.impl(
        peer.resources, arg.model_copy(update={"phone": "+380670000000"})
    )
    assert nobody.buyers == []


async def test_find_cards_finds_the_buyer_s_cards_in_a_pipeline(peer: Peer) -> None:
    arg = m.KeyCrmFindCards(integration=INTEGRATION, client_id=peer.ids["buyer"])
    every = await keycrm_ops.find_cards.impl(peer.resources, arg)
    assert sorted(c["id"] for c in every.cards) == sorted([peer.ids["card"], peer.other_card])
    in_sales = await keycrm_ops.find_cards.impl(
        peer.resources, arg.model_copy(update={"pipeline_id": peer.ids["pipeline"]})
    )
    [card] = in_sales.cards
    assert card["id"] == peer.ids["card"]
    assert card["status"]["is_final"] is False and card["manager"]["full_name"] == "Олена Коваль"
    sent = peer.state.requests_to("GET", "/v1/pipelines/cards")[-1]
    assert sent.query["filter[pipeline_id]"] == str(peer.ids["pipeline"])
    assert sent.query["include"] == "contact.client,status,manager,custom_fields"
    # The contact is what links a card to its buyer: an include without it still brings it.
    bare = await keycrm_ops.find_cards.impl(peer.resources, arg.model_copy(update={"include": "status"}))
    assert len(bare.cards) == 2
    assert (
        peer.state.requests_to("GET", "/v1/pipelines/cards")[-1].query["include"] == "contact.client,status"
    )


async def test_get_card(peer: Peer) -> None:
    arg = m.KeyCrmGetCard(integration=INTEGRATION, card_id=peer.ids["card"])
    card = (await keycrm_ops.get_card.impl(peer.resources, arg)).card
    assert card is not None and card["status_id"] == peer.ids["new"]
    gone = await keycrm_ops.get_card.impl(peer.resources, arg.model_copy(update={"card_id": 999_999}))
    assert gone.card is None


async def test_update_card_sends_status_note_and_custom_fields(peer: Peer) -> None:
    arg = update(
        peer,
        status_id=peer.ids["interested"],
        note="Зацікавлений",
        custom_fields={peer.note_field: "Дзвінок: так", peer.select_field: ["Дивани"]},
    )
    result = await keycrm_ops.update_card.impl(peer.resources, arg)
    assert result == m.KeyCrmUpdated(card_id=peer.ids["card"], status=True, card=None)
    sent = peer.state.requests_to("PUT", "/v1/pipelines/cards/")[-1]
    assert sent.path == f"/v1/pipelines/cards/{peer.ids['card']}"
    assert sent.json == {
        "status_id": peer.ids["interested"],
        "note": "Зацікавлений",
        "custom_fields": [
            {"uuid": peer.note_field, "value": "Дзвінок: так"},
            {"uuid": peer.select_field, "value": ["Дивани"]},
        ],
    }
    card = peer.state.cards[peer.ids["card"]]
    assert (card["status_id"], card["note"]) == (peer.ids["interested"], "Зацікавлений")
    assert card["custom_fields"] == {peer.note_field: "Дзвінок: так", peer.select_field: ["Дивани"]}
    # Only what was asked for is sent.
    await keycrm_ops.update_card.impl(peer.resources, update(peer, note="Друге"))
    assert peer.state.requests_to("PUT", "/v1/pipelines/cards/")[-1].json == {"note": "Друге"}


async def test_an_update_with_nothing_to_write_is_refused_before_any_request(peer: Peer) -> None:
    asked = len(peer.state.requests)
    with pytest.raises(ValidationFailed):
        await keycrm_ops.update_card.impl(peer.resources, update(peer))
    assert len(peer.state.requests) == asked


async def test_update_landed_reads_the_card_back(peer: Peer) -> None:
    landed = keycrm_ops.update_card.landed
    assert landed is not None
    since = datetime.now(UTC)
    wanted = update(
        peer,
        status_id=peer.ids["callback"],
        note="Передзвонити",
        custom_fields={peer.note_field: "Завтра", peer.select_field: "Дивани"},
    )
    assert await landed(peer.resources, wanted, since) is None

    card = peer.state.cards[peer.ids["card"]]
    card.update(status_id=peer.ids["callback"], note="Передзвонити")
    card["custom_fields"] = {peer.note_field: "Завтра", peer.select_field: ["Дивани"]}
    found = await landed(peer.resources, wanted, since)
    assert isinstance(found, m.KeyCrmUpdated)
    assert found.card_id == peer.ids["card"] and found.status is True
    assert found.card is not None and found.card["status_id"] == peer.ids["callback"]
    assert found.card["note"] == "Передзвонити"
    assert peer.state.requests[-1].method == "GET"  # a read, never a second write

    # Any value the card does not hold yet means the update did not land.
    for differing in (
        {"status_id": peer.ids["interested"]},
        {"note": "Інше"},
        {"custom_fields": {peer.note_field: "Післязавтра"}},
        {"custom_fields": {peer.select_field: ["Дивани", "Крісла"]}},
    ):
        assert await landed(peer.resources, wanted.model_copy(update=differing), since) is None, differing
    # A status alone is checked alone.
    alone = update(peer, status_id=peer.ids["callback"])
    assert await landed(peer.resources, alone, since) is not None
    # The note may come back as the card's manager_comment.
    card["note"], card["manager_comment"] = None, "Передзвонити"
    assert await landed(peer.resources, update(peer, note="Передзвонити"), since) is not None
    card["manager_comment"] = None
    gone = wanted.model_copy(update={"card_id": 999_999})
    assert await landed(peer.resources, gone, since) is None


async def test_a_retry_after_an_interrupted_update_sends_no_second_put(peer: Peer) -> None:
    """The durable path: the activity's ledger entry began and never finished; the update landed."""
    [activity_fn] = [a for a in context_activities(peer.resources) if a.__name__ == "keycrm_update_card"]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"wf-{uuid.uuid4().hex}", activity_id="3")
    arg = update(peer, status_id=peer.ids["voicemail"], note="Автовідповідач")
    await WriteLedger(peer.resources.pool, INTEGRATION).begin(f"{env.info.workflow_id}/3")
    await keycrm_ops.update_card.impl(peer.resources, arg)  # the cut-short attempt's write
    puts = len(peer.state.requests_to("PUT"))
    result = await env.run(activity_fn, arg)
    assert len(peer.state.requests_to("PUT")) == puts
    assert result.card is not None and result.card["status_id"] == peer.ids["voicemail"]
    # A retry after that answers from the ledger, without asking KeyCRM.
    asked = len(peer.state.requests)
    assert await env.run(activity_fn, arg) == result
    assert len(peer.state.requests) == asked

    # Interrupted, but the update did not land: it is sent (once).
    env.info = dataclasses.replace(env.info, workflow_id=f"wf-{uuid.uuid4().hex}")
    await WriteLedger(peer.resources.pool, INTEGRATION).begin(f"{env.info.workflow_id}/3")
    again = arg.model_copy(update={"status_id": peer.ids["no_conversation"]})
    answer = await env.run(activity_fn, again)
    assert answer.card is None and len(peer.state.requests_to("PUT")) == puts + 1
    assert peer.state.cards[peer.ids["card"]]["status_id"] == peer.ids["no_conversation"]


async def test_an_echoed_api_key_comes_back_as_its_name(peer: Peer) -> None:
    card = peer.state.cards[peer.ids["card"]]
    card["note"] = f"pasted {API_KEY}"
    arg = m.KeyCrmGetCard(integration=INTEGRATION, card_id=peer.ids["card"])
    found = (await keycrm_ops.get_card.impl(peer.resources, arg)).card
    assert found is not None and found["note"] == "pasted {{secret:KEYCRM_API_KEY}}"
    assert API_KEY not in str(found)


async def test_without_the_secret_nothing_is_asked(peer: Peer) -> None:
    asked = len(peer.state.requests)
    with pytest.raises(SecretMissing):
        await keycrm_ops.find_buyers.impl(
            peer.resources, m.KeyCrmFindBuyers(integration="keycrm_nokey", phone=DEMO_PHONE)
        )
    assert len(peer.state.requests) == asked


async def test_a_429_holds_the_key_off_and_the_request_is_sent_again_after_it(peer: Peer) -> None:
    """The Retry-After goes into the key's shared pacing (every worker waits past it), and the
    request is sent again once it has passed, so the operation still answers."""
    key = pacing_key("keycrm", API_KEY)
    pool = peer.resources.pool
    peer.state.fail_next(429, body={"message": "Too Many Attempts."}, headers={"Retry-After": "2"})
    asked = len(peer.state.requests)
    before = await pool.fetchval("SELECT clock_timestamp()")
    started = time.monotonic()
    found = await keycrm_ops.get_card.impl(
        peer.resources, m.KeyCrmGetCard(integration=INTEGRATION, card_id=peer.ids["card"])
    )
    assert found.card is not None and found.card["id"] == peer.ids["card"]
    assert [r.path for r in peer.state.requests[asked:]] == [f"/v1/pipelines/cards/{peer.ids['card']}"] * 2
    assert time.monotonic() - started >= 2.0  # the second request waited out the Retry-After
    held = await pool.fetchval("SELECT held_until FROM happ_pacing WHERE key = $1", key)
    assert held is not None and (held - before).total_seconds() >= 2.0


async def test_a_429_that_persists_keeps_its_retry_after(peer: Peer) -> None:
    peer.state.fail_next(429, times=3, body={"message": "Too Many Attempts."}, headers={"Retry-After": "1"})
    asked = len(peer.state.requests)
    with pytest.raises(UpstreamError) as caught:
        await keycrm_ops.get_card.impl(
            peer.resources, m.KeyCrmGetCard(integration=INTEGRATION, card_id=peer.ids["card"])
        )
    assert caught.value.retryable and caught.value.details["retry_after"] == 1.0
    assert caught.value.details["status"] == 429
    assert len(peer.state.requests) - asked == 3  # sent three times, each after the hold-off


async def test_every_request_takes_a_turn_of_the_key_s_budget(peer: Peer) -> None:
    """Paced by a digest of the API key (never the key); 120 a minute: requests half a second apart."""
    key = pacing_key("keycrm", API_KEY)
    pool = peer.resources.pool
    arg = m.KeyCrmGetCard(integration=INTEGRATION, card_id=peer.ids["card"], per_minute=120)
    await keycrm_ops.get_card.impl(peer.resources, arg)
    before = await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key)
    assert before is not None
    assert await pool.fetchval("SELECT count(*) FROM happ_pacing WHERE key LIKE $1", f"%{API_KEY}%") == 0
    started = time.monotonic()
    for _ in range(2):
        await keycrm_ops.get_card.impl(peer.resources, arg)
    assert time.monotonic() - started >= 0.95  # each waited half a second for its turn
    after = await pool.fetchval("SELECT next_at FROM happ_pacing WHERE key = $1", key)
    assert (after - before).total_seconds() == pytest.approx(1.0, abs=0.01)


async def test_context_client(peer: Peer) -> None:
    log = HandlerLogger(CaptureSink(), integration=INTEGRATION, handler="t", trace_id="t")
    keycrm = KeyCrmClient(InlineExecutor(peer.resources, log), INTEGRATION, per_minute=6000)
    [buyer] = await keycrm.find_buyers("+380 99 482 95 73")
    cards = await keycrm.find_cards(buyer["id"], pipeline_id=peer.ids["pipeline"])
    assert [c["id"] for c in cards] == [peer.ids["card"]]
    answer = await keycrm.update_card(cards[0]["id"], status_id=peer.ids["interested"], note="Так")
    assert answer == {"card_id": peer.ids["card"], "status": True, "card": None}
    card = await keycrm.get_card(peer.ids["card"])
    assert card is not None and (card["status_id"], card["note"]) == (peer.ids["interested"], "Так")
    with pytest.raises(TypeError, match="secret reference"):
        KeyCrmClient(InlineExecutor(peer.resources, log), INTEGRATION, API_KEY)  # type: ignore[arg-type]
    # A reference handed out by creds.get is resolved inside the operation, never before.
    executor = InlineExecutor(peer.resources, log)
    secrets = await CredsClient(executor, INTEGRATION).get()
    named = KeyCrmClient(executor, INTEGRATION, secrets.KEYCRM_API_KEY, per_minute=6000)
    assert [b["id"] for b in await named.find_buyers(DEMO_PHONE)] == [buyer["id"]]
    assert peer.state.requests[-1].header("authorization") == f"Bearer {API_KEY}"
