"""2,000 webhook deliveries at two API replicas at once — the call events and post-calls
(transcription and audio) of 500 calls in flight, 10 % sent twice, 5 % with a forged signature: every valid one reaches its call
exactly once, every forged one is refused, nothing answers 5xx, and the CRM sees exactly one
write set per call. With `HAPP_BENCH_RESULTS` set (`make bench`), the figures are appended to
that file."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from bench.webhook_load import deliver, deliveries_for
from tests.e2e.call_stack import phone, start_call_stack

CALLS = 500
LOAD_P99_TARGET_MS = 1500
LOAD_RATE_TARGET = 69
pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


async def test_two_thousand_deliveries_at_two_replicas(pg_url: str, tmp_path: Path) -> None:
    stack = await start_call_stack(
        pg_url,
        tmp_path / "logs",
        None,
        handling={"concurrency_limit": 1000, "ring_timeout_seconds": 600, "max_call_seconds": 3600},
    )
    try:
        stack.start_worker()
        stack.start_worker()
        second = await stack.start_api()
        numbers = [phone(10_000 + n) for n in range(CALLS)]
        stack.add_leads(numbers)
        began = time.monotonic()
        call_ids = await stack.originate(numbers)
        while len(stack.sims.voice.calls) < CALLS:
            assert time.monotonic() - began < 400, (
                f"{len(stack.sims.voice.calls)} of {CALLS} calls dialled\n" + stack.worker_logs()
            )
            await asyncio.sleep(0.5)
        dialled = time.monotonic() - began
        by_id = {c.call_id: c for c in stack.sims.voice.calls}
        plans = deliveries_for(
            [by_id[i] for i in call_ids], stack.sims.voice, duplicates=0.10, bad_signatures=0.05
        )
        figures = await deliver(plans, replicas=[stack.base, second], integration="sofa")
        print(figures.line())
        assert not figures.unexpected, figures.unexpected[:10]
        assert figures.sent >= 2000 and figures.refused > 0 and figures.duplicates > 0
        assert not any(status >= 500 for status in figures.statuses)
        delivered = time.monotonic()
        await stack.until_all(call_ids, {"completed"}, seconds=400)
        completed = time.monotonic() - delivered
        for number in numbers:
            record = stack.records[number]
            writes = [
                stack.writes_to(record, k) for k in ("update-record", "create-call-log", "create-comment")
            ]
            assert writes == [1, 1, 1], (number, writes)
        rows = await stack.rows(call_ids)
        assert all(r["attempt"] == 1 for r in rows)  # no event was applied twice, none started a retry
        audio = await stack.resources.pool.fetch(
            f"SELECT call_id, count(*) AS n FROM {stack.integration}_call_documents "
            "WHERE kind = 'audio' GROUP BY call_id"
        )
        assert {r["call_id"]: r["n"] for r in audio} == dict.fromkeys(call_ids, 1)  # each stored once
        if target := os.environ.get("HAPP_BENCH_RESULTS"):
            # The targets (p99 at most 1.5 s; three times the 23 deliveries/s this load got before the
            # gateway was tuned) are figures for this machine, said beside the figures, not
            # asserted: speed lives in bench/.
            met = figures.p99_ms <= LOAD_P99_TARGET_MS and figures.per_second >= LOAD_RATE_TARGET
            with open(target, "a") as results:
                results.write(
                    f"\n## Webhook load ({CALLS} calls in flight, 2 API replicas, 2 workers)\n\n"
                    f"- target: p99 ≤ {LOAD_P99_TARGET_MS / 1000:g} s and ≥ {LOAD_RATE_TARGET}/s: "
                    f"{'met' if met else 'NOT MET'}\n"
                    f"- {figures.line()}\n"
                    f"- {CALLS} calls originated in one batch, all dialled in {dialled:.0f} s; after the "
                    f"last delivery every call completed in {completed:.0f} s, each with one CRM write set\n"
                )
    finally:
        await stack.close()
