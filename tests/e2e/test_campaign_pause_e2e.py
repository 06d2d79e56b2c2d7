"""A campaign paused and resumed mid-run, end to end: 200 recipients at max_concurrency 5 through two
worker processes (the integration allows 10 at once, so 5 is the campaign's own share), paused once
50 recipients have ended, held ~5 s, resumed, and a worker killed with SIGKILL while calls are on
the line. From one second after the pause answered until the resume, no originate reaches the
voice assistant; every recipient ends final, each is dialled once and written to the CRM once,
never more than 5 are on the line, and the report lists all 200."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from simulator.calls import Play
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(420)
AUTH = {"Authorization": f"Bearer {ADMIN}"}
RECIPIENTS = 200
SHARE = 5
PAUSE_AFTER = 50
HOLD_SECONDS = 5.0
# A grant that crossed the pause on its way to a call may still dial just after the answer.
GRACE_SECONDS = 1.0
FINAL = {"completed", "exhausted", "failed", "cancelled", "expired", "suppressed"}


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(
        pg_url,
        tmp_path_factory.mktemp("campaign-pause-logs"),
        Play.answered(30, talk_seconds=0.2),
        handling={"concurrency_limit": 2 * SHARE},
    )
    try:
        yield stack
    finally:
        await stack.close()


async def view(stack: CallStack, campaign_id: str) -> dict[str, Any]:
    resp = await stack.http.get(f"/{stack.integration}/campaigns/{campaign_id}", headers=AUTH)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def ended(campaign: dict[str, Any]) -> int:
    return sum(n for status, n in campaign["counts"].items() if status in FINAL)


async def until_view(
    stack: CallStack, campaign_id: str, done: Any, seconds: float, pause: float = 0.2
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while not done(now := await view(stack, campaign_id)):
        assert time.monotonic() < deadline, f"{now}\n{stack.worker_logs()}"
        await asyncio.sleep(pause)
    return now


async def all_recipients(stack: CallStack, campaign_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 75, **({"cursor": cursor} if cursor else {})}
        resp = await stack.http.get(
            f"/{stack.integration}/campaigns/{campaign_id}/recipients", params=params, headers=AUTH
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        rows += page["recipients"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_pause_holds_every_new_dial_and_resume_with_a_killed_worker_loses_nothing(
    stack: CallStack,
) -> None:
    started = time.monotonic()
    stack.start_worker()
    stack.start_worker()
    numbers = [phone(200_000 + n) for n in range(RECIPIENTS)]
    stack.add_leads(numbers)
    stack.sims.voice.reset_in_flight()
    body = {
        "name": "Pause and resume",
        "max_concurrency": SHARE,
        "recipients": [{"phone_number": n, "id": f"r-{i:03d}"} for i, n in enumerate(numbers)],
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    assert resp.json()["accepted"] == RECIPIENTS
    campaign_id = resp.json()["campaign_id"]

    # Pause once 50 recipients have ended.
    await until_view(stack, campaign_id, lambda c: ended(c) >= PAUSE_AFTER, 180)
    resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/pause", headers=AUTH)
    paused_at = time.monotonic()
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "paused"
    ended_at_pause = ended(await view(stack, campaign_id))
    assert ended_at_pause < RECIPIENTS

    # Held: the campaign shows `paused`, and what was on the line finishes.
    while time.monotonic() < paused_at + HOLD_SECONDS:
        assert (await view(stack, campaign_id))["status"] == "paused"
        await asyncio.sleep(0.5)
    assert stack.sims.voice.in_flight == 0, stack.sims.voice.in_flight_timeline[-10:]
    resume_sent = time.monotonic()
    resp = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/resume", headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "running"
    calls = list(stack.sims.voice.calls)
    late = [c.call_id for c in calls if paused_at + GRACE_SECONDS <= c.originated_at < resume_sent]
    assert late == [], f"{len(late)} originates while the campaign was paused"
    in_grace = [c for c in calls if paused_at <= c.originated_at < paused_at + GRACE_SECONDS]
    ended_while_paused = ended(await view(stack, campaign_id))

    # After the resume, while calls are on the line: one worker killed, a new one started.
    await stack.until(
        lambda: (
            stack.sims.voice.in_flight >= 2
            and any(c.originated_at >= resume_sent for c in stack.sims.voice.calls)
        ),
        seconds=60,
    )
    stack.workers[0].kill()
    stack.start_worker()

    done = await until_view(stack, campaign_id, lambda c: c["status"] == "finished", 300, pause=0.5)
    assert done["total"] == RECIPIENTS
    assert ended(done) == RECIPIENTS, done["counts"]
    assert done["counts"]["completed"] == RECIPIENTS, done["counts"]
    rows = await all_recipients(stack, campaign_id)
    assert [r["recipient_id"] for r in rows] == [f"r-{i:03d}" for i in range(RECIPIENTS)]
    assert {r["status"] for r in rows} == {"completed"}, Counter(r["status"] for r in rows)
    assert all(r["attempts"] == 1 and r["call_id"] for r in rows)

    # Each recipient dialled once, never more than 5 on the line, one CRM write set each.
    dials = Counter(c.phone_number for c in stack.sims.voice.calls)
    assert set(dials) == set(numbers)
    assert max(dials.values()) == 1, [n for n, k in dials.items() if k > 1]
    assert stack.sims.voice.max_in_flight <= SHARE, stack.sims.voice.in_flight_timeline
    assert stack.sims.voice.max_in_flight == SHARE  # the share was used, not just respected
    for number in numbers:
        writes = stack.crm_writes(number)
        assert writes == {"update-record": 1, "create-call-log": 1, "create-comment": 1}, (number, writes)

    resp = await stack.http.get(f"/{stack.integration}/campaigns/{campaign_id}/report.csv", headers=AUTH)
    assert resp.status_code == 200, resp.text
    assert len(resp.text.strip().splitlines()) == RECIPIENTS + 1
    header, *report = list(csv.reader(io.StringIO(resp.text)))
    assert header == "id,number,status,outcome,attempts,call_id,last_attempt_at,summary,reason".split(",")
    assert [row[0] for row in report] == [f"r-{i:03d}" for i in range(RECIPIENTS)]
    assert {(row[2], row[4]) for row in report} == {("completed", "1")}
    assert {row[5] for row in report} == {r["call_id"] for r in rows}
    print(
        f"\npause e2e: {time.monotonic() - started:.1f} s; ended at pause {ended_at_pause}, "
        f"while paused {ended_while_paused}; originates in the 1 s grace {len(in_grace)} "
        f"(at +{', +'.join(f'{c.originated_at - paused_at:.2f}' for c in in_grace) or '-'} s), "
        f"after it until resume 0; max in flight {stack.sims.voice.max_in_flight}"
    )
