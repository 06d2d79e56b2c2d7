"""`make bench`: run every benchmark, print each line, and write `bench/results.md` and
`bench/results.json` (the webhook load test appends its figures to the Markdown file after).

python -m bench                 # all of them
python -m bench ingest agent    # those whose module name starts with one of these

Exit status 1 when a benchmark with a target missed it.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    agent_init,
    call_throughput,
    campaigns,
    context_overhead,
    durable_inline,
    durable_overhead,
    ingest,
    scale,
)
from bench.context_overhead import Result
from bench.harness import Benchmark

RESULTS = Path(__file__).with_name("results.md")
RESULTS_JSON = Path(__file__).with_name("results.json")


def _micro(run: Callable[[], Awaitable[Result]]) -> Callable[[], Awaitable[Benchmark]]:
    async def wrapped() -> Benchmark:
        result = await run()
        return Benchmark(
            result.name,
            f"≤ {result.max_ratio}× baseline",
            result.ok,
            result.line(),
            {"ratio": result.ratio, "measured_s": result.measured_s, "baseline_s": result.baseline_s},
        )

    return wrapped


BENCHMARKS: dict[str, Callable[[], Awaitable[Benchmark]]] = {
    "ingest": ingest.run,
    "agent_init": agent_init.run,
    "call_throughput": call_throughput.run,
    "campaigns": campaigns.run,
    "durable_inline": durable_inline.run,
    "scale": scale.run,
    "context_overhead": _micro(context_overhead.run),
    "durable_overhead": _micro(durable_overhead.run),
}


def _bullets(line: str) -> str:
    """A benchmark's line as Markdown: one bullet, or its own bullets when it has several."""
    lines = [part.strip() for part in line.strip().splitlines()]
    return "\n".join(part if part.startswith("- ") else f"- {part}" for part in lines)


def main(argv: list[str]) -> int:
    chosen = {k: v for k, v in BENCHMARKS.items() if not argv or any(k.startswith(a) for a in argv)}
    results: list[tuple[str, Benchmark, float]] = []
    for key, run in chosen.items():
        began = time.monotonic()
        result = asyncio.run(run())
        seconds = time.monotonic() - began
        print(f"{result.name} [{result.verdict()}, {seconds:.0f} s]: {result.line}", flush=True)
        results.append((key, result, seconds))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    rows = "".join(f"| {r.name} | {r.target} | {r.verdict()} | {s:.0f} s |\n" for _, r, s in results)
    details = "".join(f"\n### {r.name}\n\n{_bullets(r.line)}\n" for _, r, _ in results)
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Written by `make bench` on {when}, {machine}. Each figure is the median of the rounds, "
        "with the lowest and highest round in brackets; every baseline ran in the same session, "
        "its rounds interleaved with the measured ones. How to read them: the README's Benchmarks "
        "section.\n\n"
        "| benchmark | target | | took |\n|---|---|---|---|\n" + rows + details
    )
    RESULTS_JSON.write_text(
        json.dumps(
            {
                "written": when,
                "machine": machine,
                "benchmarks": {
                    key: {"name": r.name, "target": r.target, "ok": r.ok, "seconds": s, "figures": r.figures}
                    for key, r, s in results
                },
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    return 1 if any(r.ok is False for _, r, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
