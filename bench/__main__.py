"""`make bench`: run every benchmark, print its ratio against the same-run baseline, and write
the lines to `bench/results.md` (the webhook load test appends its figures there after).

python -m bench
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.agent_init import run as agent_init
from bench.context_overhead import run as context_overhead
from bench.durable_overhead import run as durable_overhead

RESULTS = Path(__file__).with_name("results.md")


def main() -> int:
    results = [asyncio.run(context_overhead()), asyncio.run(durable_overhead()), asyncio.run(agent_init())]
    failed = [r for r in results if not r.ok]
    for result in results:
        print(result.line())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Written by `make bench` on {when}, {os.cpu_count()} cores, Python {platform.python_version()}.\n\n"
        "## Ratios against a baseline in the same run\n\n"
        + "".join(f"- {result.line()}\n" for result in results)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
