"""Scale: thousands of calls in flight on one worker, whose sticky cache (HAPP_WORKER_CACHE_SIZE,
1,000 by default) is smaller than the number of calls: the worker's memory per call in flight,
and how long an event takes to reach a call and be answered as the number grows.

The calls are originated through `happ api` in batches of 500 outside their calling hours (only
on a weekday two days from now), so each `OutboundCall` waits on its durable timer, holding no
slot and dialling nobody, as calls queued for the morning do. At 500, 1,000, 2,000 and 5,000
calls the benchmark reads the worker's resident memory (`VmRSS`) and sends call-events
deliveries to calls picked at random (the workflow answers "nothing changed": no attempt is on
the line), 16 at a time from the load generator, and takes their p50 and p99. A call past the
cache is replayed from its history first, so the p99 grows once the calls outnumber the cache.
No target: figures for sizing a worker.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Benchmark, call_bench_stack, load, post

LEVELS = (500, 1000, 2000, 5000)
BATCH = 500
EVENTS = 240
CONCURRENCY = 16


async def _until_all_wait(calls: Any, count: int, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while (
        waiting := await calls.resources.pool.fetchval(
            "SELECT count(*) FROM sofa_calls WHERE next_attempt_at IS NOT NULL"
        )
    ) < count:
        assert time.monotonic() < deadline, f"{waiting} of {count} calls wait on their timer"
        await asyncio.sleep(0.5)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(levels: tuple[int, ...] = LEVELS) -> Benchmark:
    from tests.e2e.call_stack import phone

    later = (datetime.now(UTC) + timedelta(days=2)).isoweekday()
    handling = {
        "concurrency_limit": 10,
        "calling_hours": {"timezone": "UTC", "start": "00:00", "end": "23:59", "weekdays": [later]},
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        async with call_bench_stack(Path(folder), handling) as (calls, api, _bare):
            worker = calls.workers[0].proc.pid
            await asyncio.sleep(3)  # the worker's imports done: its memory before any call
            idle_mb = _rss_mb(worker)
            call_ids: list[str] = []
            rng = random.Random(11)
            for level in levels:
                began = time.monotonic()
                while len(call_ids) < level:
                    numbers = [
                        phone(60_000 + len(call_ids) + n) for n in range(min(BATCH, level - len(call_ids)))
                    ]
                    resp = await calls.http.post(
                        f"{api}/sofa/webhook/call-originate",
                        json={"calls": [{"phone_number": n} for n in numbers]},
                        headers=calls.hook,
                        timeout=600,
                    )
                    assert resp.status_code == 200, resp.text[:500]
                    call_ids += [c["callId"] for c in resp.json()["calls"]]
                # Every call waiting on its timer: its row has the moment it waits for. (A faster
                # Temporal server lets the API start calls faster than the worker takes their first
                # tasks: an event sent before then would measure that backlog, not an event.)
                await _until_all_wait(calls, level)
                probe = await calls.http.post(
                    f"{api}/sofa/webhook/call-events",
                    json=_event(call_ids[-1], -1),
                    headers=calls.hook,
                    timeout=600,
                )
                assert probe.status_code == 200, probe.text[:500]
                started_s = time.monotonic() - began
                rss = _rss_mb(worker)
                picks = [rng.choice(call_ids) for _ in range(EVENTS)]
                deliveries = [
                    post(f"{api}/sofa/webhook/call-events", _event(call_id, n), calls.hook)
                    for n, call_id in enumerate(picks)
                ]
                answered = await load(deliveries, CONCURRENCY)
                rows.append(
                    {
                        "calls": level,
                        "rss_mb": round(rss, 1),
                        "rss_per_call_kb": round((rss - idle_mb) * 1024 / level, 1),
                        "event_p50_ms": round(answered.p50_ms, 1),
                        "event_p99_ms": round(answered.p99_ms, 1),
                        "events_per_second": round(answered.per_second, 1),
                        "seconds_to_start": round(started_s, 1),
                    }
                )
                print(f"  scale: {rows[-1]}", flush=True)
    text = "; ".join(
        f"{r['calls']} calls: RSS {r['rss_mb']:.0f} MB ({r['rss_per_call_kb']:.0f} KB a call), event p50 "
        f"{r['event_p50_ms']:.0f} ms, p99 {r['event_p99_ms']:.0f} ms"
        for r in rows
    )
    return Benchmark(
        f"Scale (calls waiting on a timer, one worker, sticky cache 1,000; idle worker {idle_mb:.0f} MB)",
        "none: figures for sizing a worker",
        None,
        text,
        {"idle_rss_mb": round(idle_mb, 1), "levels": rows},
    )


def _event(call_id: str, n: int) -> dict[str, Any]:
    return {
        "eventType": "call_start",
        "callId": call_id,
        "conversation_id": f"conv-{call_id}-{n}",
        "metadata": {"provider_call_id": f"p-{call_id}"},
    }


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
