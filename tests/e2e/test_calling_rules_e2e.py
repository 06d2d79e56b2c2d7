"""The calling rules end to end on the dev stack, with two worker processes: `contact_policy`'s
daily cap over a campaign whose recipients share numbers, and a callee's "do not call me again"
(read by the simulated analysis model) ending the other recipients of that number `suppressed`.

What is checked is what an operator sees: the simulated voice assistant's record of originates,
the campaign's recipients over the admin API, the call's state, the do-not-call list."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from happ_integ.calls.contact_policy import RELAXED_CONTACT_POLICY
from simulator.calls import Play, SimCall
from tests.e2e.call_stack import ADMIN, CallStack, start_call_stack

pytestmark = pytest.mark.timeout(300)
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def answering(reply: str, duration: int) -> Play:
    """An answered call in which the callee answers the agent's question with `reply`: what the
    simulated analysis model reads."""
    question = {"role": "agent", "message": "Добрий день! Вас цікавить наш вебінар?", "time_in_call_secs": 0}
    return Play.answered(
        duration,
        talk_seconds=0.3,
        transcript=[question, {"role": "user", "message": reply, "time_in_call_secs": 3}],
    )


# What the simulated model reads as "interested" (the default transcript asks for a callback,
# which would be a call of its own holding the number).
ANSWERED = answering("Так, цікаво, хочу прийти.", 30)
OPT_OUT = answering("Please do not call me again.", 12)
# Numbers no other test dials (the attempts of every test share one table): +38067 BBB NNNN.
BLOCK = f"+38067{random.randrange(100, 1000)}"
PLAYS: dict[str, Play] = {}  # how a number's calls play (others: ANSWERED)


def number(n: int) -> str:
    return f"{BLOCK}{n:04d}"


def _play(stack: CallStack, call: SimCall) -> None:
    stack.sims.play_in_background(call, PLAYS.get(call.phone_number, ANSWERED))


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url,
        tmp_path_factory.mktemp("rules-logs"),
        ANSWERED,
        handling={"concurrency_limit": 5},
        llm=True,
    )
    stack.sims.voice.on_originate = lambda call: _play(stack, call)
    stack.start_worker()
    stack.start_worker()  # two workers: the caps hold across processes
    try:
        yield stack
    finally:
        await stack.close()


async def recipients(stack: CallStack, campaign_id: str) -> dict[str, dict[str, Any]]:
    resp = await stack.http.get(
        f"/{stack.integration}/campaigns/{campaign_id}/recipients", params={"limit": 500}, headers=AUTH
    )
    assert resp.status_code == 200, resp.text
    return {r["recipient_id"]: r for r in resp.json()["recipients"]}


async def until_recipients(
    stack: CallStack, campaign_id: str, want: dict[str, int], seconds: float = 120
) -> dict[str, dict[str, Any]]:
    """The recipients, once their statuses count as `want` ({"completed": 10, …})."""
    deadline = time.monotonic() + seconds
    while True:
        rows = await recipients(stack, campaign_id)
        counts = Counter(r["status"] for r in rows.values())
        if counts == Counter(want):
            return rows
        if time.monotonic() > deadline:
            calls = await stack.resources.pool.fetch(
                f"SELECT call_id, phone, status, attempt, reason FROM {stack.integration}_calls"
                " WHERE phone LIKE $1 ORDER BY created_at",
                f"{BLOCK}%",
            )
            table = "\n".join(str(dict(c)) for c in calls)
            recs = await stack.resources.pool.fetch(
                f"SELECT recipient_id, phone, status, call_id, reason FROM {stack.integration}_campaign_recipients"
                " WHERE campaign_id = $1 ORDER BY seq",
                campaign_id,
            )
            listed = "\n".join(str(dict(r)) for r in recs)
            raise AssertionError(f"recipients {dict(counts)}\n{listed}\ncalls:\n{table}")
        await asyncio.sleep(0.3)


def dials(stack: CallStack, numbers: list[str]) -> Counter[str]:
    wanted = set(numbers)
    return Counter(c.phone_number for c in stack.sims.voice.calls if c.phone_number in wanted)


async def test_twenty_recipients_on_five_numbers_under_two_attempts_a_day(stack: CallStack) -> None:
    config = stack.resources.config(stack.integration)
    await config.set("contact_policy", {"max_attempts_per_day": 2, "min_minutes_between_attempts": 0})
    numbers = [number(n) for n in range(5)]
    stack.add_leads(numbers)
    body = {
        "name": "Shared numbers",
        "recipients": [{"phone_number": numbers[i % 5], "id": f"lead-{i:02d}"} for i in range(20)],
    }
    try:
        resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
        assert resp.status_code == 201, resp.text
        campaign_id = resp.json()["campaign_id"]
        # Two recipients of each number are called; the third is held by the cap (its call waits
        # for a day), the fourth waits for the third's call to end.
        rows = await until_recipients(stack, campaign_id, {"completed": 10, "scheduled": 5, "pending": 5})
        await asyncio.sleep(2)  # nothing more is dialled
        assert dials(stack, numbers) == dict.fromkeys(numbers, 2)
        assert Counter(r["status"] for r in (await recipients(stack, campaign_id)).values()) == {
            "completed": 10,
            "scheduled": 5,
            "pending": 5,
        }
        counted = await stack.resources.pool.fetch(
            "SELECT phone, count(*) AS n FROM happ_contact_attempts WHERE phone = ANY($1::text[]) GROUP BY phone",
            numbers,
        )
        assert {r["phone"]: r["n"] for r in counted} == dict.fromkeys(numbers, 2)

        for _, row in sorted(rows.items()):
            assert row["reason"] or row["status"] == "completed", row
            if row["status"] == "completed":
                assert row["outcome"] and row["summary"], row
            elif row["status"] == "scheduled":
                assert "contact_policy.max_attempts_per_day: 2" in row["reason"], row
                state = (
                    await stack.http.get(f"/{stack.integration}/calls/{row['call_id']}", headers=AUTH)
                ).json()
                assert state["attempt"] == 0 and state["reason"] == row["reason"]
                wait = datetime.fromisoformat(state["next_attempt_at"]) - datetime.fromisoformat(
                    row["updated_at"]
                )
                assert timedelta(hours=23) < wait <= timedelta(hours=24), state
            else:
                assert row["reason"] == "waiting: another call to the number is in flight", row
                assert row["call_id"] is None
        # Which leads got which: in the order they were added, two per number.
        assert {lead for lead, r in rows.items() if r["status"] == "completed"} == {
            f"lead-{i:02d}" for i in range(10)
        }

        # The preflight of the same list now sees every number capped.
        check = await stack.http.post(f"/{stack.integration}/campaigns/preflight", json=body, headers=AUTH)
        assert check.status_code == 200, check.text
        assert check.json()["counts"]["capped"] == 20

        resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/cancel", headers=AUTH)
        assert resp.status_code == 200, resp.text
        ended = await until_recipients(stack, campaign_id, {"completed": 10, "cancelled": 10})
        assert all(r["reason"] for r in ended.values() if r["status"] == "cancelled")
        assert dials(stack, numbers) == dict.fromkeys(numbers, 2)
    finally:
        await config.set("contact_policy", RELAXED_CONTACT_POLICY)


async def test_a_callee_who_opts_out_is_not_called_again_by_the_campaign(stack: CallStack) -> None:
    opted, other = number(10), number(11)
    stack.add_leads([opted, other])
    PLAYS[opted] = OPT_OUT
    body = {
        "name": "Opt-out",
        "recipients": [
            {"phone_number": opted, "id": "first"},
            {"phone_number": other, "id": "other"},
            {"phone_number": opted, "id": "again"},
        ],
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    campaign_id = resp.json()["campaign_id"]
    rows = await until_recipients(stack, campaign_id, {"completed": 2, "suppressed": 1})
    assert rows["first"]["status"] == "completed" and rows["first"]["outcome"] == "do_not_call"
    assert rows["other"]["status"] == "completed"
    assert rows["again"]["status"] == "suppressed"
    assert "do-not-call list" in rows["again"]["reason"], rows["again"]
    assert dials(stack, [opted, other]) == {opted: 1, other: 1}
    entry = await stack.resources.pool.fetchrow(
        "SELECT integration, source, evidence FROM happ_suppressions WHERE phone = $1", opted
    )
    assert dict(entry) == {
        "integration": stack.integration,
        "source": "analysis",
        "evidence": rows["first"]["call_id"],
    }
