"""The KeyCRM simulator on its own: Bearer refusal, exact phone filter, allowed filters, pages,
its rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from simulator.keycrm import KeyCrmState, create_keycrm_app


@pytest.fixture
async def sim() -> AsyncIterator[tuple[KeyCrmState, httpx.AsyncClient]]:
    state = KeyCrmState(api_key="key-1")
    _, statuses = state.add_pipeline("Sales", ["New", "Won"])
    buyer = state.add_buyer("Іван", "+380 99 482 95 73")
    for i in range(20):
        state.add_card(
            statuses[0], {"full_name": f"N{i}", "phone": f"+3805000000{i:02d}", "client_id": buyer}
        )
    app = create_keycrm_app(state)
    headers = {"Authorization": "Bearer key-1"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://kc", headers=headers
    ) as http:
        yield state, http


@pytest.mark.parametrize("authorization", ["", "Bearer wrong", "Basic a2V5LTE=", "key-1"])
async def test_bearer_refusal(sim: tuple[KeyCrmState, httpx.AsyncClient], authorization: str) -> None:
    answer = await sim[1].get("/v1/buyer", headers={"Authorization": authorization})
    assert answer.status_code == 401 and answer.json() == {"message": "Unauthenticated."}


async def test_buyer_phone_filter_is_exact_on_digits(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    _, http = sim

    async def count(value: str) -> int:
        return int((await http.get("/v1/buyer", params={"filter[buyer_phone]": value})).json()["total"])

    assert await count("380994829573") == 1
    assert await count("+380994829573") == 0
    assert await count("0994829573") == 0


async def test_card_filters_are_limited_like_keycrm(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    _, http = sim
    refused = await http.get("/v1/pipelines/cards", params={"filter[contact.phone]": "380500000001"})
    assert refused.status_code == 400
    assert "Allowed filter(s) are `pipeline_id, status_id" in refused.json()["message"]
    assert (await http.get("/v1/pipelines/cards", params={"limit": 51})).status_code == 422


async def test_pagination(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    _, http = sim
    first = (await http.get("/v1/pipelines/cards", params={"limit": 15, "include": "contact"})).json()
    assert (first["total"], first["current_page"], first["per_page"], len(first["data"])) == (20, 1, 15, 15)
    assert "contact" in first["data"][0] and "status" not in first["data"][0]
    second = (await http.get(first["next_page_url"])).json()
    assert (second["current_page"], len(second["data"]), second["next_page_url"]) == (2, 5, None)


async def test_card_update_moves_pipeline(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    state, http = sim
    _, (other,) = state.add_pipeline("Retention", ["Call back"])
    card_id = next(iter(state.cards))
    answer = await http.put(f"/v1/pipelines/cards/{card_id}", json={"status_id": other, "note": "n", "x": 1})
    assert answer.json() == {"status": True}
    card = state.cards[card_id]
    assert (card["status_id"], card["pipeline_id"], card["note"]) == (
        other,
        state.statuses[other]["pipeline_id"],
        "n",
    )
    assert "x" not in card


async def test_rate_limit_like_keycrm(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    """N requests per window per key; then 429 with Retry-After until the window closes; a refused
    request does not count; the next window lets N through again."""
    state, http = sim
    state.rate_limit, state.rate_window_seconds = 3, 1.0
    answers = [await http.get("/v1/pipelines") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    refused = answers[3]
    assert refused.json() == {"message": "Too Many Attempts."}
    assert refused.headers["retry-after"] == "1" and int(refused.headers["x-ratelimit-reset"]) > 0
    # An unauthenticated request is refused for its key, not counted against anyone's window.
    assert (await http.get("/v1/pipelines", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert [h.status for h in state.hits] == [200, 200, 200, 429, 429] and state.refused == 2
    assert all(h.key == "key-1" and h.path == "/v1/pipelines" for h in state.hits)
    assert [h.retry_after for h in state.hits] == [None, None, None, 1, 1]
    await sleep_past(state.hits[0].at + 1.0)
    again = [await http.get("/v1/pipelines") for _ in range(4)]
    assert [a.status_code for a in again] == [200, 200, 200, 429]
    state.clear_requests()
    assert state.hits == [] and state.refused == 0


async def test_no_rate_limit_by_default(sim: tuple[KeyCrmState, httpx.AsyncClient]) -> None:
    state, http = sim
    answers = [await http.get("/v1/pipelines") for _ in range(70)]
    assert {a.status_code for a in answers} == {200} and state.refused == 0
    assert "x-ratelimit-limit" not in answers[0].headers


async def sleep_past(moment: float) -> None:
    """Sleep until `time.monotonic()` is past `moment`."""
    while (left := moment - time.monotonic()) >= 0:
        await asyncio.sleep(left + 0.01)
