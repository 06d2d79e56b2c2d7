"""Campaigns end to end on the dev stack, as an operator sees them: the routes over real HTTP, a
worker process of its own, the simulated voice assistant and CRM playing every call (each number
as its script says: answered by default, unanswered or long where a test needs it)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from control.client import queue_state
from happ_integ.calls.phones import mask_phone
from happ_integ.temporal import connect_settings
from simulator.calls import Play, SimCall
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(600)
AUTH = {"Authorization": f"Bearer {ADMIN}"}
ANSWERED = Play.answered(30, talk_seconds=0.3)
FINAL = {"completed", "exhausted", "failed", "cancelled", "expired", "suppressed"}
# How each number's originates play, in turn (the last one repeats); others play ANSWERED.
SCRIPTS: dict[str, list[Play]] = {}


def _play(stack: CallStack, call: SimCall) -> None:
    script = SCRIPTS.get(call.phone_number, [ANSWERED])
    stack.sims.play_in_background(call, script.pop(0) if len(script) > 1 else script[0])


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url, tmp_path_factory.mktemp("campaign-logs"), ANSWERED, handling={"concurrency_limit": 5}
    )
    stack.sims.voice.on_originate = lambda call: _play(stack, call)
    stack.start_worker()
    try:
        yield stack
    finally:
        await stack.close()


def numbers_from(first: int, count: int) -> list[str]:
    return [phone(first + n) for n in range(count)]


async def create(
    stack: CallStack, body: dict[str, Any], key: str | None = None, status: int = 201
) -> dict[str, Any]:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=headers)
    assert resp.status_code == status, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def post(stack: CallStack, path: str, status: int = 200, **kw: Any) -> dict[str, Any]:
    resp = await stack.http.post(f"/{stack.integration}/campaigns/{path}", headers=AUTH, **kw)
    assert resp.status_code == status, resp.text
    return resp.json()  # type: ignore[no-any-return]


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


async def recipients(stack: CallStack, campaign_id: str, status: str | None = None) -> list[dict[str, Any]]:
    """Every recipient (of one status), page by page."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        params |= {"status": status} if status else {}
        params |= {"cursor": cursor} if cursor else {}
        resp = await stack.http.get(
            f"/{stack.integration}/campaigns/{campaign_id}/recipients", params=params, headers=AUTH
        )
        assert resp.status_code == 200, resp.text
        rows += resp.json()["recipients"]
        if (cursor := resp.json()["next_cursor"]) is None:
            return rows


async def all_campaigns(stack: CallStack, limit: int = 200, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        resp = await stack.http.get(f"/{stack.integration}/campaigns", params=query, headers=AUTH)
        assert resp.status_code == 200, resp.text
        found += resp.json()["campaigns"]
        if (cursor := resp.json()["next_cursor"]) is None:
            return found


def dials(stack: CallStack, numbers: list[str]) -> Counter[str]:
    """How many originates reached the voice assistant for each of `numbers`."""
    wanted = set(numbers)
    return Counter(c.phone_number for c in stack.sims.voice.calls if c.phone_number in wanted)


async def until(test: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_small_campaign_runs_to_the_end_and_reports_every_recipient(stack: CallStack) -> None:
    numbers = numbers_from(5000, 12)
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
    created = await create(stack, body)
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


async def test_the_same_idempotency_key_answers_the_same_campaign_and_another_body_is_a_409(
    stack: CallStack,
) -> None:
    numbers = numbers_from(6000, 2)
    stack.add_leads(numbers)
    name = f"Idempotent {uuid.uuid4().hex[:8]}"
    body = {"name": name, "recipients": [{"phone_number": n} for n in numbers]}
    key = f"key-{uuid.uuid4().hex}"
    first = await create(stack, body, key)
    again = await create(stack, body, key)
    assert again == first
    assert (first["accepted"], first["rejected"]) == (2, [])
    listed = [c for c in await all_campaigns(stack) if c["name"] == name]
    assert [c["campaign_id"] for c in listed] == [first["campaign_id"]]
    other = await create(stack, {**body, "name": f"{name} (changed)"}, key, status=409)
    assert "Idempotency-Key" in str(other)
    after = [c["campaign_id"] for c in await all_campaigns(stack) if c["name"].startswith(name)]
    assert after == [first["campaign_id"]]  # the refused request stored nothing
    done = await until_campaign(stack, first["campaign_id"], "finished", 60)
    assert done["counts"]["completed"] == 2
    assert dials(stack, numbers) == dict.fromkeys(numbers, 1)  # one campaign: each number dialled once
    # Once finished, the same request still answers what it answered first.
    assert await create(stack, body, key) == first


async def test_more_than_10000_recipients_are_refused_whole_and_nothing_is_stored(stack: CallStack) -> None:
    before = {c["campaign_id"] for c in await all_campaigns(stack)}
    table = f"{stack.integration}_campaign_recipients"
    stored = await stack.resources.pool.fetchval(f"SELECT count(*) FROM {table}")
    body = {
        "name": "Too many",
        "recipients": [{"phone_number": phone(7_000_000 + n)} for n in range(10_001)],
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code in (413, 422), resp.text[:500]
    assert {c["campaign_id"] for c in await all_campaigns(stack)} == before
    assert await stack.resources.pool.fetchval(f"SELECT count(*) FROM {table}") == stored
    assert not dials(stack, [phone(7_000_000)])


async def test_recipients_are_checked_by_index_and_their_variables_and_metadata_reach_the_call(
    stack: CallStack,
) -> None:
    numbers = numbers_from(8000, 3)
    stack.add_leads(numbers)
    variables = {"company": "Recipient Co", "webinar": "12 Dec"}
    metadata = {"crm_ref": "deal-17", "owner": "Olena"}
    body = {
        "name": "Checked",
        "recipients": [
            {"phone_number": numbers[0], "id": "a", "variables": variables, "metadata": metadata},
            {"phone_number": "not a number", "id": "x"},
            {"phone_number": numbers[1], "id": "b"},
            {"phone_number": numbers[2], "id": "a"},  # repeated: refused at this later occurrence
            {"phone_number": numbers[2], "id": "bad id!"},
            {"phone_number": numbers[2]},  # its id is its number
        ],
    }
    created = await create(stack, body)
    assert created["accepted"] == 3
    rejected = [(r["index"], r["id"]) for r in created["rejected"]]
    assert rejected == [(1, "x"), (3, "a"), (4, "bad id!")]
    errors = [r["error"] for r in created["rejected"]]
    assert "not a valid phone number" in errors[0]
    assert "already in the campaign" in errors[1]
    assert numbers[2] not in str(created)  # a number is never written back
    campaign_id = created["campaign_id"]
    await until_campaign(stack, campaign_id, "finished", 60)

    rows = await recipients(stack, campaign_id)
    # A recipient sent without an id has its number as its id: shown masked, as the number is.
    assert [r["recipient_id"] for r in rows] == ["a", "b", mask_phone(numbers[2])]
    assert numbers[2] not in str(rows)
    report = await stack.http.get(f"/{stack.integration}/campaigns/{campaign_id}/report.csv", headers=AUTH)
    assert report.status_code == 200 and mask_phone(numbers[2]) in report.text
    assert not [n for n in numbers if n in report.text]
    first = rows[0]
    assert first["metadata"] == metadata
    assert first["variables"] == variables
    assert first["phone_masked"] != numbers[0] and first["phone_masked"].endswith(numbers[0][-2:])
    assert rows[1]["metadata"] == {} and rows[1]["variables"] == {}

    # The agent heard the recipient's own values, with the CRM lookup filling in the rest.
    call_id = first["call_id"]
    init = [
        d.response["dynamic_variables"]
        for d in stack.sims.voice.deliveries
        if d.kind == "agent_init" and d.response["dynamic_variables"].get("call_id") == call_id
    ]
    assert len(init) == 1, init
    lead = {"client_name": f"Лід {numbers[0][-4:]}", "lead_source": "Ads"}
    assert {k: init[0][k] for k in (*variables, *lead)} == {**variables, **lead}
    state = await stack.state(call_id)
    assert state["variables"] == {**lead, **variables}
    assert state["campaign_id"] == campaign_id and state["recipient_id"] == "a"
    assert state["metadata"]["crm_ref"] == "deal-17"
    # A recipient without variables gets the lookup's.
    other = await stack.state(rows[1]["call_id"])
    assert other["variables"]["company"] == "ТОВ Тест"


async def test_campaigns_are_listed_newest_first_page_by_page(stack: CallStack) -> None:
    numbers = numbers_from(9000, 1)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    made = []
    for n in range(3):
        body = {"name": f"Later {n}", "start_at": tomorrow, "recipients": [{"phone_number": numbers[0]}]}
        made.append((await create(stack, body))["campaign_id"])
    paged = await all_campaigns(stack, limit=2)
    ids = [c["campaign_id"] for c in paged]
    assert len(ids) == len(set(ids)) >= 3
    assert ids[:3] == made[::-1]  # the newest first
    created_at = [datetime.fromisoformat(c["created_at"]) for c in paged]
    assert created_at == sorted(created_at, reverse=True)
    assert {c["campaign_id"] for c in await all_campaigns(stack, limit=200)} == set(ids)
    scheduled = await all_campaigns(stack, limit=1, status="scheduled")
    assert [c["campaign_id"] for c in scheduled] == made[::-1]
    assert all(c["status"] == "scheduled" and c["total"] == 1 for c in scheduled)
    resp = await stack.http.get(f"/{stack.integration}/campaigns?cursor=nope", headers=AUTH)
    assert resp.status_code == 422, resp.text

    # Cancelled before its start_at: its recipient never called.
    for campaign_id in made:
        answer = await post(stack, f"{campaign_id}/cancel")
        assert answer["cancel_requested"] is True
    for campaign_id in made:
        done = await until_campaign(stack, campaign_id, "cancelled", 30)
        assert done["counts"]["cancelled"] == 1 and done["total"] == 1
    assert not dials(stack, numbers)


async def test_recipients_filter_by_status_and_a_filtered_retry_calls_only_those_again(
    stack: CallStack,
) -> None:
    numbers = numbers_from(10_000, 6)
    stack.add_leads(numbers)
    unanswered = numbers[1::3]  # the 2nd and 5th: nobody answers the first time
    for number in unanswered:
        SCRIPTS[number] = [Play.no_answer(), ANSWERED]
    body = {
        "name": "Retry",
        "max_attempts": 1,
        "recipients": [{"phone_number": n, "id": f"r{i}"} for i, n in enumerate(numbers)],
    }
    campaign_id = (await create(stack, body))["campaign_id"]
    done = await until_campaign(stack, campaign_id, "finished", 60)
    assert (done["counts"]["completed"], done["counts"]["exhausted"]) == (4, 2), done["counts"]
    completed = await recipients(stack, campaign_id, "completed")
    assert [r["recipient_id"] for r in completed] == ["r0", "r2", "r3", "r5"]
    exhausted = await recipients(stack, campaign_id, "exhausted")
    assert [r["recipient_id"] for r in exhausted] == ["r1", "r4"]
    assert await recipients(stack, campaign_id, "pending") == []
    first_calls = {r["recipient_id"]: r["call_id"] for r in exhausted}

    # Only the exhausted ones are called again, with a new call each; the campaign finishes again.
    answer = await post(stack, f"{campaign_id}/retry", json={"statuses": ["exhausted"]})
    assert (answer["retried"], answer["status"]) == (2, "running")
    done = await until_campaign(stack, campaign_id, "finished", 60)
    assert done["counts"]["completed"] == 6 and done["total"] == 6, done["counts"]
    assert dials(stack, numbers) == {n: 2 if n in unanswered else 1 for n in numbers}
    rows = {r["recipient_id"]: r for r in await recipients(stack, campaign_id)}
    for recipient_id, call_id in first_calls.items():
        assert rows[recipient_id]["call_id"] not in (None, call_id)
        assert rows[recipient_id]["attempts"] == 2  # the attempts before the retry still count
    assert all(rows[f"r{i}"]["attempts"] == 1 for i in (0, 2, 3, 5))
    # Nothing matches the filter any more: nothing is retried and the campaign stays finished.
    answer = await post(stack, f"{campaign_id}/retry", json={"statuses": ["exhausted"]})
    assert (answer["retried"], answer["status"]) == (0, "finished")


async def test_recipients_appended_while_running_are_called_and_none_once_finished(
    stack: CallStack,
) -> None:
    numbers = numbers_from(11_000, 3)
    stack.add_leads(numbers)
    for number in numbers[:2]:
        SCRIPTS[number] = [Play.answered(30, talk_seconds=3)]
    body = {
        "name": "Append",
        "recipients": [{"phone_number": n, "id": f"r{i}"} for i, n in enumerate(numbers[:2])],
    }
    campaign_id = (await create(stack, body))["campaign_id"]
    await until(lambda: bool(dials(stack, numbers[:2])), 30, "the campaign never dialled")
    assert (await campaign(stack, campaign_id))["status"] == "running"
    # Only a finished campaign is retried.
    resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/retry", headers=AUTH)
    assert resp.status_code == 409, resp.text

    appended = await post(
        stack,
        f"{campaign_id}/recipients",
        json={
            "recipients": [
                {"phone_number": numbers[2], "id": "late"},
                {"phone_number": numbers[0], "id": "r0"},
            ]
        },
    )
    assert appended["accepted"] == 1
    assert [(r["index"], r["id"]) for r in appended["rejected"]] == [(1, "r0")]
    assert "already in the campaign" in appended["rejected"][0]["error"]
    done = await until_campaign(stack, campaign_id, "finished", 60)
    assert done["total"] == 3 and done["counts"]["completed"] == 3, done["counts"]
    assert dials(stack, numbers) == dict.fromkeys(numbers, 1)
    assert [r["recipient_id"] for r in await recipients(stack, campaign_id)] == ["r0", "r1", "late"]

    late = {"recipients": [{"phone_number": numbers[2], "id": "too-late"}]}
    resp = await stack.http.post(
        f"/{stack.integration}/campaigns/{campaign_id}/recipients", json=late, headers=AUTH
    )
    assert resp.status_code == 409, resp.text
    assert (await campaign(stack, campaign_id))["total"] == 3
    for change in ("pause", "resume", "cancel"):
        resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/{change}", headers=AUTH)
        assert resp.status_code == 409, (change, resp.text)


async def test_cancel_ends_the_calls_not_yet_dialled_and_lets_the_one_on_the_line_finish(
    stack: CallStack,
) -> None:
    numbers = numbers_from(12_000, 8)
    stack.add_leads(numbers)
    for number in numbers:
        SCRIPTS[number] = [Play.answered(30, talk_seconds=3)]
    body = {
        "name": "Cancel",
        "max_concurrency": 1,
        "recipients": [{"phone_number": n, "id": f"r{i}"} for i, n in enumerate(numbers)],
    }
    campaign_id = (await create(stack, body))["campaign_id"]
    await until(lambda: bool(dials(stack, numbers)), 30, "the campaign never dialled")
    answer = await post(stack, f"{campaign_id}/cancel")
    assert answer["cancel_requested"] is True
    more = {"recipients": [{"phone_number": phone(12_100)}]}
    resp = await stack.http.post(
        f"/{stack.integration}/campaigns/{campaign_id}/recipients", json=more, headers=AUTH
    )
    assert resp.status_code == 409, resp.text

    done = await until_campaign(stack, campaign_id, "cancelled", 60)
    assert done["cancel_requested"] is True and done["finished_at"]
    assert done["total"] == 8
    assert (done["counts"]["completed"], done["counts"]["cancelled"]) == (1, 7), done["counts"]
    rows = await recipients(stack, campaign_id)
    dialled = dials(stack, numbers)
    assert {r["recipient_id"] for r in rows if r["status"] == "completed"} == {
        f"r{i}" for i, n in enumerate(numbers) if n in dialled
    }
    # The one on the line (one of the first two started, whichever queued first); no other dialled.
    assert list(dialled.values()) == [1] and set(dialled) <= set(numbers[:2]), dialled
    assert all(r["status"] in FINAL for r in rows)
    resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/resume", headers=AUTH)
    assert resp.status_code == 409, resp.text


async def test_a_campaigns_calls_are_found_in_temporal_by_its_campaign_id(stack: CallStack) -> None:
    numbers = numbers_from(13_000, 2)
    stack.add_leads(numbers)
    body = {"name": "Searchable", "recipients": [{"phone_number": n} for n in numbers]}
    campaign_id = (await create(stack, body))["campaign_id"]
    await until_campaign(stack, campaign_id, "finished", 60)
    wanted = {f"{stack.integration}:call:{r['call_id']}" for r in await recipients(stack, campaign_id)}
    wanted.add(f"{stack.integration}:campaign:{campaign_id}")
    client = await connect_settings(stack.settings)
    deadline = time.monotonic() + 30
    while (found := {w.id async for w in client.list_workflows(f'CampaignId="{campaign_id}"')}) != wanted:
        assert time.monotonic() < deadline, (found, wanted)
        await asyncio.sleep(0.5)


async def test_the_routes_want_the_admin_token_and_name_what_is_missing(stack: CallStack) -> None:
    name = stack.integration
    body = {"name": "Nobody's", "recipients": [{"phone_number": phone(14_000)}]}
    refused: list[httpx.Response] = [
        await stack.http.get(f"/{name}/campaigns"),
        await stack.http.get(f"/{name}/campaigns", headers={"Authorization": "Bearer wrong"}),
        await stack.http.post(f"/{name}/campaigns", json=body),
        await stack.http.post(f"/{name}/campaigns/cmp_x/pause"),
        await stack.http.get(f"/{name}/campaigns/cmp_x/report.csv"),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused), [r.text for r in refused]
    assert not [c for c in await all_campaigns(stack) if c["name"] == "Nobody's"]

    unknown = "cmp_unknown"
    missing = [
        await stack.http.get(f"/{name}/campaigns/{unknown}", headers=AUTH),
        await stack.http.get(f"/{name}/campaigns/{unknown}/recipients", headers=AUTH),
        await stack.http.get(f"/{name}/campaigns/{unknown}/report.csv", headers=AUTH),
        await stack.http.post(f"/{name}/campaigns/{unknown}/pause", headers=AUTH),
        await stack.http.post(f"/{name}/campaigns/{unknown}/cancel", headers=AUTH),
        await stack.http.post(f"/{name}/campaigns/{unknown}/retry", headers=AUTH),
        await stack.http.post(f"/{name}/campaigns/{unknown}/recipients", json=body, headers=AUTH),
        await stack.http.get("/nope/campaigns", headers=AUTH),
        await stack.http.post("/nope/campaigns", json=body, headers=AUTH),
    ]
    assert [r.status_code for r in missing] == [404] * len(missing), [r.text for r in missing]


async def test_a_campaign_that_finishes_while_paused_is_retried_like_any_other(stack: CallStack) -> None:
    numbers = numbers_from(15_000, 2)
    stack.add_leads(numbers)
    SCRIPTS[numbers[0]] = [Play.answered(30, talk_seconds=6)]  # on the line when the pause comes
    SCRIPTS[numbers[1]] = [Play.no_answer(), ANSWERED]
    body = {
        "name": "Paused at the end",
        "max_attempts": 1,
        "recipients": [{"phone_number": n, "id": f"r{i}"} for i, n in enumerate(numbers)],
    }
    campaign_id = (await create(stack, body))["campaign_id"]
    deadline = time.monotonic() + 30
    while not (numbers[0] in dials(stack, numbers) and await recipients(stack, campaign_id, "exhausted")):
        assert time.monotonic() < deadline, await recipients(stack, campaign_id)
        await asyncio.sleep(0.1)
    assert (await post(stack, f"{campaign_id}/pause"))["status"] == "paused"
    # Nothing is left to dial: the call on the line ends, and with it the campaign.
    done = await until_campaign(stack, campaign_id, "finished", 60)
    assert (done["counts"]["completed"], done["counts"]["exhausted"]) == (1, 1), done["counts"]

    # The queue holds nothing of it back any more (told as the run ends).
    client = await connect_settings(stack.settings)
    deadline = time.monotonic() + 30
    while campaign_id in (queue := await queue_state(client, stack.integration)).paused_campaigns:
        assert time.monotonic() < deadline, queue
        await asyncio.sleep(0.2)
    answer = await post(stack, f"{campaign_id}/retry")  # no filter: the exhausted one
    assert (answer["retried"], answer["status"]) == (1, "running")
    done = await until_campaign(stack, campaign_id, "finished", 60)
    assert done["counts"]["completed"] == 2, done["counts"]
    assert dials(stack, numbers) == {numbers[0]: 1, numbers[1]: 2}
