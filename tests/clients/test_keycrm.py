"""KeyCrmApi against the KeyCRM simulator: real paths, Bearer auth, filters, pages and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from happ_integ.clients.keycrm import DEFAULT_RETRY_AFTER, MAX_SENDS, KeyCrmApi, phone_digits
from happ_integ.errors import Forbidden, NotFound, Unauthorized, UpstreamError, UpstreamRejected
from simulator.keycrm import KeyCrmState, create_keycrm_app

BASE = "http://keycrm.test/v1"
PHONE = "+380994829573"


@dataclass
class Env:
    state: KeyCrmState
    api: KeyCrmApi
    http: httpx.AsyncClient
    buyer: int
    statuses: list[int]
    card: int
    order: int


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = KeyCrmState(api_key="kc-key-0123456789")
    _, statuses = state.add_pipeline("Sales", ["New", "Called", "Won"])
    buyer = state.add_buyer("Іван Петренко", PHONE, "ivan@example.com")
    state.add_buyer("Марія", "+380671112233")
    card = state.add_card(statuses[0], {"full_name": "Іван Петренко", "phone": PHONE, "client_id": buyer})
    order = state.add_order(buyer, status_id=1, source_id=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_keycrm_app(state))) as http:
        yield Env(state, KeyCrmApi(http, BASE, state.api_key), http, buyer, statuses, card, order)


async def test_find_buyer_by_phone_sends_digits_and_bearer(env: Env) -> None:
    buyers = await env.api.find_buyer_by_phone("+380 (99) 482-95-73")
    assert [(b.id, b.full_name, b.phone) for b in buyers] == [(env.buyer, "Іван Петренко", [PHONE])]
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("GET", "/v1/buyer")
    assert sent.query == {"filter[buyer_phone]": "380994829573", "limit": "15"}
    assert sent.header("authorization") == "Bearer kc-key-0123456789"
    assert await env.api.find_buyer_by_phone("+380000000000") == []
    assert phone_digits("+38 (099) 48") == "3809948"


async def test_get_buyer_and_order(env: Env) -> None:
    buyer = await env.api.get_buyer(env.buyer)
    assert buyer is not None and buyer.email == ["ivan@example.com"]
    order = await env.api.get_order(env.order)
    assert order is not None and order.status_id == 1 and order.buyer and order.buyer["id"] == env.buyer
    assert env.state.requests[-1].path == f"/v1/order/{env.order}"
    assert env.state.requests[-1].query == {"include": "buyer"}
    assert await env.api.get_order(999_999) is None
    assert await env.api.get_buyer(999_999) is None


async def test_find_orders_by_phone(env: Env) -> None:
    orders = await env.api.find_orders_by_phone(PHONE)
    assert [o.id for o in orders] == [env.order]
    assert env.state.requests[-1].query["filter[buyer_phone]"] == "380994829573"


async def test_update_order(env: Env) -> None:
    order = await env.api.update_order(env.order, {"status_id": 4, "manager_comment": "Передзвонити"})
    assert (order.id, order.status_id, order.manager_comment) == (env.order, 4, "Передзвонити")
    sent = env.state.requests[-1]
    assert (sent.method, sent.path, sent.json) == (
        "PUT",
        f"/v1/order/{env.order}",
        {"status_id": 4, "manager_comment": "Передзвонити"},
    )
    with pytest.raises(NotFound):
        await env.api.update_order(999_999, {"status_id": 1})


async def test_create_order_and_validation(env: Env) -> None:
    payload = {
        "source_id": 1,
        "buyer": {"full_name": "Олег", "phone": "+380501234567"},
        "manager_comment": "AI",
    }
    order = await env.api.create_order(payload)
    assert env.state.orders[order.id]["manager_comment"] == "AI"
    assert env.state.requests[-1].json == payload
    with pytest.raises(UpstreamRejected) as caught:
        await env.api.create_order({"buyer": {"full_name": "X"}})
    assert caught.value.details["status"] == 422 and "source_id" in caught.value.message


async def test_pipelines_and_statuses(env: Env) -> None:
    pipelines = await env.api.list_pipelines()
    statuses = await env.api.list_pipeline_statuses(pipelines[0]["id"])
    assert [s["name"] for s in statuses] == ["New", "Called", "Won"]
    assert env.state.requests[-1].path == f"/v1/pipelines/{pipelines[0]['id']}/statuses"


async def test_find_cards_by_phone_scans_pages(env: Env) -> None:
    for i in range(60):
        env.state.add_card(env.statuses[1], {"full_name": f"N{i}", "phone": f"+38050000{i:04d}"})
    target = env.state.add_card(env.statuses[1], {"full_name": "Last", "phone": "+380 50 999 88 77"})
    cards = await env.api.find_cards_by_phone(
        "380509998877", pipeline_id=env.state.statuses[env.statuses[1]]["pipeline_id"]
    )
    assert [c.id for c in cards] == [target]
    pages = env.state.requests_to("GET", "/v1/pipelines/cards")
    assert [r.query["page"] for r in pages] == ["1", "2"]
    assert all(r.query["limit"] == "50" and "filter[pipeline_id]" in r.query for r in pages)
    assert pages[0].query["include"] == "contact.client,status"
    linked = await env.api.find_cards_by_client(env.buyer)
    assert [c.id for c in linked] == [env.card]
    assert linked[0].contact and linked[0].contact.client and linked[0].contact.client["id"] == env.buyer


async def test_update_card_status_and_note(env: Env) -> None:
    assert await env.api.update_card_status(env.card, env.statuses[2], note="Зацікавлений")
    sent = env.state.requests[-1]
    assert (sent.method, sent.path) == ("PUT", f"/v1/pipelines/cards/{env.card}")
    assert sent.json == {"status_id": env.statuses[2], "note": "Зацікавлений"}
    card = await env.api.get_card(env.card)
    assert card is not None and card.status_id == env.statuses[2]
    assert card.status and card.status["name"] == "Won"
    assert await env.api.get_card(999_999) is None
    with pytest.raises(UpstreamRejected):
        await env.api.update_card_status(env.card, 999_999)


async def test_create_card(env: Env) -> None:
    card = await env.api.create_card(
        {"title": "Новий лід", "contact": {"full_name": "Олег", "phone": "+380501234567"}}
    )
    assert env.state.cards[card.id]["title"] == "Новий лід"
    assert env.state.requests[-1].path == "/v1/pipelines/cards"


async def test_auth_and_failure_mapping(env: Env) -> None:
    with pytest.raises(Unauthorized) as caught:
        await KeyCrmApi(env.http, BASE, "wrong-key-987654").find_buyer_by_phone(PHONE)
    assert "wrong-key-987654" not in str(caught.value)
    env.state.fail_next(403)
    with pytest.raises(Forbidden):
        await env.api.get_order(env.order)
    env.state.fail_next(503)
    with pytest.raises(UpstreamError):
        await env.api.get_order(env.order)
    env.state.fail_next(429)
    with pytest.raises(UpstreamError):
        await env.api.list_pipelines()


async def test_timeout_is_upstream_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(UpstreamError, match="KeyCRM timed out"):
            await KeyCrmApi(http, BASE, "k", timeout=1).get_order(1)


class Pacing:
    """`pace` and `hold_off` that record what the client asked, in order, and never wait."""

    def __init__(self) -> None:
        self.calls: list[str | float] = []

    async def pace(self) -> None:
        self.calls.append("pace")

    async def hold_off(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_a_429_holds_the_key_off_then_the_request_is_sent_again_on_its_next_turn(env: Env) -> None:
    pacing = Pacing()
    api = KeyCrmApi(env.http, BASE, env.state.api_key, pace=pacing.pace, hold_off=pacing.hold_off)
    env.state.fail_next(429, body={"message": "Too Many Attempts."}, headers={"Retry-After": "7"})
    order = await api.update_order(env.order, {"status_id": 5})
    assert order.status_id == 5
    assert pacing.calls == ["pace", 7.0, "pace"]  # the second send waited for a turn after the hold
    puts = env.state.requests_to("PUT", f"/v1/order/{env.order}")
    assert [r.json for r in puts] == [{"status_id": 5}] * 2


async def test_a_429_without_retry_after_holds_off_for_keycrm_s_window(env: Env) -> None:
    pacing = Pacing()
    api = KeyCrmApi(env.http, BASE, env.state.api_key, pace=pacing.pace, hold_off=pacing.hold_off)
    env.state.fail_next(429, body={"message": "Too Many Attempts."})
    assert await api.get_order(env.order) is not None
    assert pacing.calls == ["pace", DEFAULT_RETRY_AFTER, "pace"]


async def test_a_429_that_persists_is_raised_after_max_sends(env: Env) -> None:
    """Against KeyCRM's own limit (2 a minute here): every refusal holds the key off for the
    Retry-After KeyCRM sent; after MAX_SENDS the 429 is raised with it."""
    env.state.rate_limit, env.state.rate_window_seconds = 2, 60.0
    pacing = Pacing()
    api = KeyCrmApi(env.http, BASE, env.state.api_key, pace=pacing.pace, hold_off=pacing.hold_off)
    await api.list_pipelines()
    await api.list_pipelines()
    with pytest.raises(UpstreamError) as caught:
        await api.list_pipelines()
    refused = [hit for hit in env.state.hits if hit.status == 429]
    assert len(refused) == MAX_SENDS == env.state.refused
    retry_after = caught.value.details["retry_after"]
    assert caught.value.details["status"] == 429 and 58 <= retry_after <= 60
    assert pacing.calls[:2] == ["pace", "pace"]
    holds = [call for call in pacing.calls if not isinstance(call, str)]
    assert holds == [float(hit.retry_after or 0) for hit in refused]


async def test_without_hold_off_a_429_is_raised_at_once(env: Env) -> None:
    pacing = Pacing()
    api = KeyCrmApi(env.http, BASE, env.state.api_key, pace=pacing.pace)
    env.state.fail_next(429, headers={"Retry-After": "3"})
    with pytest.raises(UpstreamError) as caught:
        await api.get_order(env.order)
    assert caught.value.details["retry_after"] == 3.0 and pacing.calls == ["pace"]
