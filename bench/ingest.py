"""Webhook ingest: call-events deliveries per second through the gateway, against a bare FastAPI
route that sends the same Update with a plain Temporal client.

Calls are dialled first (the simulated voice assistant takes them and stays silent), so each
`OutboundCall` is waiting on its events. Every delivery is a `call_start` with a conversation id
of its own, so each is a new Update the workflow handles (not an answer Temporal repeats for a
redelivery). The gateway (`happ api`) validates the body, finds the call's row in PostgreSQL,
sends the Update and answers the workflow's decision; the bare route (bench.bare_app) only sends
the Update. One worker (`happ worker`) serves both. Target: happ ≥ 0.85× bare.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Benchmark, Round, call_bench_stack, interleaved, load, post, spread, spread_of
from simulator.voice import call_event

CALLS = 64
PER_ROUND = 640
CONCURRENCY = 32
ROUNDS = 3
TARGET = 0.85


async def run() -> Benchmark:
    from tests.e2e.call_stack import phone

    handling = {"concurrency_limit": CALLS, "ring_timeout_seconds": 600, "max_call_seconds": 3600}
    with tempfile.TemporaryDirectory() as folder:
        async with call_bench_stack(Path(folder), handling) as (calls, api, bare):
            numbers = [phone(20_000 + n) for n in range(CALLS)]
            calls.add_leads(numbers)
            await calls.originate(numbers)
            await calls.until(lambda: len(calls.sims.voice.calls) >= CALLS, seconds=120)
            dialled = list(calls.sims.voice.calls)
            batch = iter(range(1_000_000))

            def deliveries(url: str) -> list[dict[str, Any]]:
                out = []
                for n in range(PER_ROUND):
                    call = dialled[n % CALLS]
                    body = call_event(call, "call_start")
                    body["conversation_id"] = f"{call.conversation_id}-{next(batch)}"
                    out.append(post(url, body, calls.hook))
                return out

            def side(url: str) -> Any:
                return lambda: load(deliveries(url), CONCURRENCY)

            rounds = await interleaved(
                ROUNDS,
                {"happ": side(f"{api}/sofa/webhook/call-events"), "bare": side(f"{bare}/sofa/call-events")},
            )
    return _result(rounds)


def _result(rounds: dict[str, list[Round]]) -> Benchmark:
    happ = spread_of(rounds["happ"], "per_second")
    bare = spread_of(rounds["bare"], "per_second")
    ratios = spread(
        [h.per_second / b.per_second for h, b in zip(rounds["happ"], rounds["bare"], strict=True)]
    )
    p99 = {name: spread_of(rs, "p99_ms") for name, rs in rounds.items()}
    return Benchmark(
        f"Webhook ingest (call-events, {CONCURRENCY} concurrent, {CALLS} calls in flight)",
        f"≥ {TARGET}× bare",
        ratios.median >= TARGET,
        f"happ {happ.text('/s')}, p99 {p99['happ'].text(' ms')}; bare {bare.text('/s')}, "
        f"p99 {p99['bare'].text(' ms')}; ratio {ratios.text('×', 2)}",
        {
            "happ_per_second": happ.as_dict(),
            "bare_per_second": bare.as_dict(),
            "ratio": ratios.as_dict(),
            "happ_p99_ms": p99["happ"].as_dict(),
            "bare_p99_ms": p99["bare"].as_dict(),
        },
    )


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
