"""Durable vs inline: the example's create-order both ways, at 1 and at 32 concurrent, so a user
can choose a handler's mode knowing what each costs.

The same handler (one `ctx.db.insert`) is served by `happ api` as `create-order` (a `HandlerRun`
on the worker, `happ worker`, awaited) and as `create-order-inline` (run in the request). The
baselines (bench.bare_app, its own process) do the same INSERT over asyncpg, and run and await a
minimal workflow with one local activity doing it: Temporal's own price for a durable step. The
framework's overhead is happ's median latency minus the baseline's, for each mode.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import BENCH_HOOK, Benchmark, Round, bench_stack, interleaved, load, post, spread_of

ROUNDS = 3
REQUESTS = {1: 60, 32: 256}
ORDER = {"phone": "+380991234567", "product_id": "p-bench", "quantity": 1}


async def run() -> Benchmark:
    with tempfile.TemporaryDirectory() as folder:
        stack = await bench_stack(Path(folder), ["example"])
        try:
            stack.worker("example")
            happ, bare = stack.api(), stack.bare()
            paths = {
                "happ durable": f"{happ}/example/webhook/create-order",
                "bare durable": f"{bare}/orders/durable",
                "happ inline": f"{happ}/example/webhook/create-order-inline",
                "bare inline": f"{bare}/orders/inline",
            }
            figures: dict[str, Any] = {}
            lines = []
            for concurrency, count in REQUESTS.items():
                sides = {
                    name: _sender([post(url, ORDER, BENCH_HOOK)] * count, concurrency)
                    for name, url in paths.items()
                }
                rounds = await interleaved(ROUNDS, sides)
                at = {name: _figures(r) for name, r in rounds.items()}
                figures[str(concurrency)] = at
                overhead = {
                    mode: at[f"happ {mode}"]["p50_ms"]["median"] - at[f"bare {mode}"]["p50_ms"]["median"]
                    for mode in ("durable", "inline")
                }
                figures[str(concurrency)]["framework_overhead_p50_ms"] = overhead
                lines.append(
                    f"at {concurrency} concurrent: "
                    + "; ".join(
                        f"{name} p50 {spread_of(r, 'p50_ms').text(' ms', 1)}, p99 {spread_of(r, 'p99_ms').text(' ms')}, "
                        f"{spread_of(r, 'per_second').text('/s')}"
                        for name, r in rounds.items()
                    )
                    + f"; happ's own part of p50: durable {overhead['durable']:+.1f} ms, "
                    f"inline {overhead['inline']:+.1f} ms"
                )
        finally:
            stack.close()
    return Benchmark(
        "Durable vs inline (create-order, one INSERT)",
        "none: figures for choosing a mode",
        None,
        "\n  - " + "\n  - ".join(lines),
        figures,
    )


def _sender(requests: list[dict[str, Any]], concurrency: int) -> Any:
    return lambda: load(requests, concurrency)


def _figures(rounds: list[Round]) -> dict[str, Any]:
    return {figure: spread_of(rounds, figure).as_dict() for figure in ("p50_ms", "p99_ms", "per_second")}


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
