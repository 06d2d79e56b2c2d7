"""Faults while calls are in flight, end to end with worker processes and the simulated peers:
Temporal stopped and restarted, PostgreSQL stopped for 20 s, PostgreSQL frozen (SIGSTOP) for
20 s, a CRM failing for a minute, a CRM that refuses our key, a voice assistant that is down, a
gateway replica killed with SIGKILL.
After each: every call ends as it should, each CRM write is made once, and no CallQueue slot
leaked (its holders are exactly the calls dialing or talking)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable
from pathlib import Path

import httpx
import pytest

from bench.webhook_load import deliver, deliveries_for
from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port
from simulator.calls import Play
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]
WRITES = ("update-record", "create-call-log", "create-comment")


def written_once(stack: CallStack, numbers: list[str]) -> None:
    for number in numbers:
        counts = [stack.writes_to(stack.records[number], kind) for kind in WRITES]
        assert counts == [1, 1, 1], (number, counts)


async def start(pg_url: str, tmp_path: Path, outcome: Play | None, **options: object) -> CallStack:
    stack = await start_call_stack(pg_url, tmp_path / "logs", outcome, **options)  # type: ignore[arg-type]
    stack.sims.voice.retry_for = 120  # the voice assistant resends what got a 5xx or no answer
    stack.start_worker()
    return stack


async def test_temporal_stopped_and_restarted_mid_flight(pg_url: str, tmp_path: Path) -> None:
    stack = await start(
        pg_url, tmp_path, Play.answered(40, talk_seconds=3), temporal_db=tmp_path / "temporal.db"
    )
    try:
        numbers = [phone(2000 + n) for n in range(6)]
        stack.add_leads(numbers)
        call_ids = await stack.originate(numbers)
        await stack.until(lambda: stack.sims.voice.in_flight >= 2, seconds=60)
        stack.temporal.stop()
        try:
            resp = await stack.http.post(
                "/sofa/webhook/call-originate", json={"phone_number": phone(2099)}, headers=stack.hook
            )
            assert resp.status_code == 503 and int(resp.headers["retry-after"]) > 0, resp.text
            assert resp.json()["dependency"] == "Temporal"
            await asyncio.sleep(4)  # the calls on the line send their events meanwhile: 503
        finally:
            stack.temporal.start()
        await stack.until_all(call_ids, {"completed"}, seconds=240)
        assert any(d.attempts > 1 for d in stack.sims.voice.deliveries)  # some were refused first
        await stack.until_all(call_ids, {"completed"}, seconds=240)
        written_once(stack, numbers)
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()


async def test_postgres_stopped_for_twenty_seconds(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    postgres.start()
    stack = await start(postgres.url, tmp_path, Play.answered(40, talk_seconds=2))
    try:
        numbers = [phone(2100 + n) for n in range(6)]
        stack.add_leads(numbers)
        call_ids = await stack.originate(numbers)
        await stack.until(lambda: stack.sims.voice.in_flight >= 2, seconds=60)
        postgres.stop()
        try:
            health = await stack.http.get("/sofa/health", headers={"Authorization": f"Bearer {ADMIN}"})
            assert health.status_code == 503 and health.json()["checks"]["postgres"]["ok"] is False
            resp = await stack.http.post(
                "/sofa/webhook/call-originate", json={"phone_number": phone(2199)}, headers=stack.hook
            )
            assert (
                resp.status_code == 503
                and resp.headers["retry-after"]
                and resp.json()["dependency"] == "PostgreSQL"
            )
            init = await stack.http.post("/sofa/webhook/agent-init", json={"phone_number": phone(2100)})
            assert init.status_code == 200 and {"today_is", "time", "weekday"} <= set(
                init.json()["dynamic_variables"]
            )
            await asyncio.sleep(20)
        finally:
            postgres.start()
        await stack.until_all(call_ids, {"completed"}, seconds=240)
        written_once(stack, numbers)
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()
        postgres.stop()


async def test_postgres_frozen_for_twenty_seconds(tmp_path: Path) -> None:
    """PostgreSQL that stops answering (SIGSTOP of the postmaster and its backends: connections
    open but silent), not one that refuses: agent-init still answers its date and time at once,
    the routes that need the database answer 503 + Retry-After by their deadline instead of
    hanging, and once it runs again (SIGCONT) nothing is lost."""
    postgres = EmbeddedPostgres(tmp_path / "pg", port=free_port())  # this test's own: it freezes it
    postgres.start()
    stack = await start(postgres.url, tmp_path, Play.answered(40, talk_seconds=2))
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        numbers = [phone(2600 + n) for n in range(6)]
        stack.add_leads(numbers)
        call_ids = await stack.originate(numbers)
        await stack.until(lambda: stack.sims.voice.in_flight >= 2, seconds=60)
        refused = phone(2699)
        stack.add_leads([refused])
        postgres.freeze()
        try:
            frozen_at = time.monotonic()
            # The agent is on the line: with the sender's token, for a number with a call in
            # flight. Its own deadline is 1.2 s; 3 s leaves slack for a busy machine.
            started = time.monotonic()
            init = await stack.http.post(
                "/sofa/webhook/agent-init", json={"phone_number": numbers[0]}, headers=stack.hook, timeout=15
            )
            took = time.monotonic() - started
            assert init.status_code == 200, init.text
            assert {"today_is", "time", "weekday"} <= set(init.json()["dynamic_variables"])
            assert took < 3, f"agent-init took {took:.2f} s with PostgreSQL frozen"

            # Routes that need the database: 503, Retry-After, which dependency, within the
            # database deadline (5 s a step) and well inside a sender's 10 s.
            async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                response = await request
                return response, time.monotonic() - started

            answers = await asyncio.gather(
                timed(
                    stack.http.post(
                        "/sofa/webhook/call-originate",
                        json={"phone_number": refused},
                        headers=stack.hook,
                        timeout=30,
                    )
                ),
                timed(stack.http.get(f"/sofa/calls/{call_ids[0]}", headers=admin, timeout=30)),
                timed(stack.http.get("/sofa/calls?status=in_progress&limit=5", headers=admin, timeout=30)),
            )
            for response, seconds in answers:
                assert response.status_code == 503, (response.request.url, response.text)
                assert int(response.headers["retry-after"]) > 0
                assert response.json()["dependency"] == "PostgreSQL"
                assert seconds < 9, (response.request.url, seconds)
            await asyncio.sleep(max(0.0, 20 - (time.monotonic() - frozen_at)))
        finally:
            postgres.thaw()
        # The refused originate, sent again as its sender would: accepted, and it runs to the end.
        call_ids += await stack.originate([refused])
        await stack.until_all(call_ids, {"completed"}, seconds=240)
        written_once(stack, [*numbers, refused])
        await stack.slots_match_the_calls_on_the_line()
    finally:
        try:
            await stack.close()
        finally:
            postgres.stop()  # thaws it first, should anything above have failed while frozen


async def test_a_crm_failing_for_a_minute_then_back(pg_url: str, tmp_path: Path) -> None:
    stack = await start(pg_url, tmp_path, Play.answered(40, talk_seconds=0.5))
    try:
        numbers = [phone(2200 + n) for n in range(4)]
        stack.add_leads(numbers)
        nethunt = stack.sims.nethunt

        async def failing_for_a_minute() -> None:
            nethunt.go_down(500)
            ends = time.monotonic() + 60
            while time.monotonic() < ends:
                if not nethunt.pending_delays:
                    nethunt.delay_next(20)  # now and then longer than the client waits: a timeout
                await asyncio.sleep(5)
            nethunt.come_back()

        outage = asyncio.create_task(failing_for_a_minute())
        call_ids = await stack.originate(numbers)
        await outage
        await stack.until_all(call_ids, {"completed"}, seconds=300)
        written_once(stack, numbers)
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()


async def test_a_crm_that_refuses_our_key_is_not_retried_and_the_call_says_why(
    pg_url: str, tmp_path: Path
) -> None:
    stack = await start(pg_url, tmp_path, Play.answered(40, talk_seconds=0.2))
    try:
        number = phone(2300)
        stack.add_leads([number])
        (call_id,) = await stack.originate([number])
        await stack.until(lambda: any(d.kind == "call_end" for d in stack.sims.voice.deliveries), seconds=60)
        stack.sims.nethunt.fail_next(401, times=50, body={"message": "Invalid credentials"})
        (row,) = await stack.until_all([call_id], {"failed"}, seconds=120)
        assert "401" in row["reason"] and "NetHunt" in row["reason"], row
        attempts = len(
            stack.sims.nethunt.requests_to(
                "POST", f"/api/v1/zapier/actions/update-record/{stack.records[number]}"
            )
        )
        assert attempts == 1  # refused once, not tried again
        stack.sims.nethunt.come_back()
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()


async def test_a_voice_assistant_down_at_originate(pg_url: str, tmp_path: Path) -> None:
    stack = await start(
        pg_url,
        tmp_path,
        Play.answered(40, talk_seconds=0.2),
        handling={"retry_delays_seconds": [1], "max_attempts": 2},
    )
    try:
        number = phone(2400)
        stack.add_leads([number])
        stack.sims.voice.fail_next(503, times=5)  # every try of the first attempt
        (call_id,) = await stack.originate([number])
        (row,) = await stack.until_all([call_id], {"completed"}, seconds=240)
        assert row["attempt"] == 2
        written_once(stack, [number])
        await stack.slots_match_the_calls_on_the_line()
    finally:
        await stack.close()


async def test_a_gateway_replica_killed_mid_requests(pg_url: str, tmp_path: Path) -> None:
    stack = await start(
        pg_url, tmp_path, None, handling={"concurrency_limit": 100, "ring_timeout_seconds": 600}
    )
    try:
        second = await stack.start_api()
        victim = stack.workers[-1]
        numbers = [phone(2500 + n) for n in range(40)]
        stack.add_leads(numbers)
        call_ids = await stack.originate(numbers)
        await stack.until(lambda: len(stack.sims.voice.calls) == 40, seconds=180)
        by_id = {c.call_id: c for c in stack.sims.voice.calls}
        plans = deliveries_for(
            [by_id[i] for i in call_ids], stack.sims.voice, duplicates=0.1, bad_signatures=0.0
        )

        async def kill_soon() -> None:
            await asyncio.sleep(1.0)
            victim.proc.send_signal(signal.SIGKILL)

        killer = asyncio.create_task(kill_soon())
        figures = await deliver(
            plans, replicas=[stack.base, second], integration="sofa", retry_elsewhere=True
        )
        await killer
        assert victim.proc.wait(10) == -signal.SIGKILL
        assert not figures.unexpected, figures.unexpected[:5]
        await stack.until_all(call_ids, {"completed"}, seconds=300)
        written_once(stack, numbers)
        await stack.slots_match_the_calls_on_the_line()
        with pytest.raises(httpx.HTTPError):
            await stack.http.get(f"{second}/health")
    finally:
        await stack.close()
