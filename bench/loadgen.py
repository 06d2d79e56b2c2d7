"""The load generator: a process of its own, so the load it makes does not share an event loop
(or a core's worth of Python) with what it measures.

    python -m bench.loadgen < spec.json    # prints one JSON line: {"sent", "seconds", ...}

The spec (on stdin) names the requests and how many go at once:

    {"concurrency": 32, "expect": [200],
     "requests": [{"url": "http://127.0.0.1:3001/sofa/webhook/agent-init",
                   "body": "{...}", "headers": {"Content-Type": "application/json"}}, ...]}

Every request is sent once, in order, by `concurrency` senders over kept-alive connections, with
aiohttp (its C parser keeps the generator from being the bottleneck it is with a pure-Python client).
The answer carries each request's latency in milliseconds, the count of every status, and the
first few answers that were not expected (so a benchmark fails loudly instead of timing errors).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests: list[dict[str, Any]] = spec["requests"]
    concurrency = int(spec.get("concurrency", 1))
    expect = set(spec.get("expect", [200]))
    latencies: list[float] = [0.0] * len(requests)
    statuses: dict[int, int] = {}
    unexpected: list[str] = []
    pending = iter(range(len(requests)))
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout", 60)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def sender() -> None:
            for index in pending:
                request = requests[index]
                began = time.perf_counter()
                try:
                    async with http.request(
                        request.get("method", "POST"),
                        request["url"],
                        data=request.get("body", "").encode(),
                        headers=request.get("headers", {"Content-Type": "application/json"}),
                    ) as resp:
                        status, text = resp.status, await resp.text()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, text = 0, f"{type(exc).__name__}: {exc}"
                latencies[index] = (time.perf_counter() - began) * 1000
                statuses[status] = statuses.get(status, 0) + 1
                if status not in expect and len(unexpected) < 5:
                    unexpected.append(f"{status}: {text[:300]}")

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    return {
        "sent": len(requests),
        "seconds": seconds,
        "latencies_ms": latencies,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "unexpected": unexpected,
    }


def main() -> int:
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(run(spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
