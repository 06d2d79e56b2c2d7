"""`make bench`: run every benchmark and print its ratio against the same-run baseline.

python -m bench
"""

from __future__ import annotations

import asyncio
import sys

from bench.agent_init import run as agent_init
from bench.context_overhead import run as context_overhead
from bench.durable_overhead import run as durable_overhead


def main() -> int:
    results = [asyncio.run(context_overhead()), asyncio.run(durable_overhead()), asyncio.run(agent_init())]
    failed = [r for r in results if not r.ok]
    for result in results:
        print(result.line())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
