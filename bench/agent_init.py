"""agent-init at 32 concurrent requests: for a call in flight, and for a cold number (no call:
the lookup runs inline against the simulated NetHunt), against a bare route returning the same JSON.

The agent waits for agent-init before it speaks, so its tail latency is what a caller hears.
`happ api` runs in its own process, beside one worker that dialled the call in flight; the
baseline is bench.bare_app. The load comes from bench.loadgen, in rounds alternating with the
baseline. Target: p99 ≤ 1.5× bare for the call in flight.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Benchmark, Round, call_bench_stack, interleaved, load, post, spread, spread_of

CONCURRENCY = 32
REQUESTS = 800
COLD_NUMBERS = REQUESTS  # a quarter of a round each, for the warm-up and three rounds
ROUNDS = 3
TARGET = 1.5


async def run() -> Benchmark:
    from tests.e2e.call_stack import phone

    with tempfile.TemporaryDirectory() as folder:
        async with call_bench_stack(Path(folder), {"ring_timeout_seconds": 600}) as (calls, api, bare):
            in_flight = phone(30_000)
            cold = [phone(40_000 + n) for n in range(COLD_NUMBERS)]
            calls.add_leads([in_flight, *cold])
            [call_id] = await calls.originate([in_flight])
            await calls.until_all([call_id], {"dialing"}, seconds=60)
            url = f"{api}/sofa/webhook/agent-init"
            unused = iter(cold)

            def cold_requests() -> list[dict[str, Any]]:
                return [post(url, {"phone_number": next(unused)}, calls.hook) for _ in range(REQUESTS // 4)]

            same = [post(url, {"phone_number": in_flight}, calls.hook)] * REQUESTS
            baseline = [post(f"{bare}/agent-init", {"phone_number": in_flight})] * REQUESTS
            sides = {
                "in flight": lambda: load(same, CONCURRENCY),
                "cold": lambda: load(cold_requests(), CONCURRENCY),
                "bare": lambda: load(baseline, CONCURRENCY),
            }
            rounds = await interleaved(ROUNDS, sides)
    return _result(rounds)


def _result(rounds: dict[str, list[Round]]) -> Benchmark:
    p50 = {name: spread_of(rs, "p50_ms") for name, rs in rounds.items()}
    p99 = {name: spread_of(rs, "p99_ms") for name, rs in rounds.items()}
    ratio = spread([h.p99_ms / b.p99_ms for h, b in zip(rounds["in flight"], rounds["bare"], strict=True)])
    return Benchmark(
        f"agent-init ({CONCURRENCY} concurrent)",
        f"p99 in flight ≤ {TARGET}× bare",
        ratio.median <= TARGET,
        "; ".join(f"{name} p50 {p50[name].text(' ms', 1)}, p99 {p99[name].text(' ms', 1)}" for name in rounds)
        + f"; p99 in flight / bare {ratio.text('×', 2)}",
        {
            "p50_ms": {k: v.as_dict() for k, v in p50.items()},
            "p99_ms": {k: v.as_dict() for k, v in p99.items()},
            "p99_ratio_in_flight": ratio.as_dict(),
        },
    )


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
