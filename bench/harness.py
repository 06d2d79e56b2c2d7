"""What the end-to-end benchmarks share: processes as in production, a load generator of its own,
rounds interleaved with their baseline, and one way to report.

    proc, bare = serve_bare(env, logs)                         # bench.bare_app in its own process
    rounds = await interleaved(3, {"happ": lambda: load(happ_requests, 32), "bare": lambda: load(bare, 32)})
    p99 = spread_of(rounds["happ"], "p99_ms")                  # median, min and max of the rounds
    Benchmark("agent-init", ok=..., target="p99 ≤ 1.5× bare", line="…", figures={…})

Every load runs in `python -m bench.loadgen` (another process), so the generator's own Python
does not slow the server it measures; `interleaved` runs the sides A B A B … so a slow moment of
the machine falls on both.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from happ_integ.embedded.process import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class BenchError(AssertionError):
    """A benchmark's requests got answers they should not have: its figures would mean nothing."""


@dataclass(frozen=True)
class Round:
    sent: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[str, int]

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)


@dataclass(frozen=True)
class Spread:
    """A figure over several rounds: the median, and the lowest and highest round."""

    median: float
    low: float
    high: float

    def text(self, unit: str = "", digits: int = 0) -> str:
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f})"

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high}


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: list[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def spread_of(rounds: list[Round], figure: str) -> Spread:
    """One of each round's figures (`p50_ms`, `p99_ms`, `per_second`) over the rounds."""
    return spread([getattr(r, figure) for r in rounds])


@dataclass
class Benchmark:
    """One benchmark's outcome: a line for bench/results.md and its figures for the JSON file."""

    name: str
    target: str
    ok: bool | None  # None: no target, figures only
    line: str
    figures: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> str:
        return "—" if self.ok is None else ("met" if self.ok else "NOT MET")


async def load(requests: list[dict[str, Any]], concurrency: int, expect: tuple[int, ...] = (200,)) -> Round:
    """Send `requests` ({"url", "body", "headers"}) from a load-generator process, `concurrency`
    at a time; raise BenchError if any answer is not one of `expect`."""
    spec = {"requests": requests, "concurrency": concurrency, "expect": list(expect)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(json.dumps(spec).encode())
    if proc.returncode != 0:
        raise BenchError(f"the load generator failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    if result["unexpected"]:
        raise BenchError(f"unexpected answers ({result['statuses']}): {result['unexpected']}")
    return Round(result["sent"], result["seconds"], result["latencies_ms"], result["statuses"])


async def interleaved(
    rounds: int, sides: dict[str, Callable[[], Awaitable[Round]]], warmup: bool = True
) -> dict[str, list[Round]]:
    """Each side once as a warm-up (connections, imports, caches), then `rounds` rounds of every
    side in turn."""
    if warmup:
        for run in sides.values():
            await run()
    results: dict[str, list[Round]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            results[name].append(await run())
    return results


def serve(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """A server process (stdout and stderr to `log`), once it listens on `port`."""
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, proc, args[0], log, timeout=60)
    return proc


def serve_happ_api(env: dict[str, str], logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`happ api` in its own process; its base URL."""
    port = free_port()
    proc = serve([str(BIN / "happ"), "api"], {**env, "HAPP_API_PORT": str(port)}, port, logs / "api.log")
    return proc, f"http://127.0.0.1:{port}"


def serve_bare(env: dict[str, str], logs: Path) -> tuple[subprocess.Popen[bytes], str]:
    """bench.bare_app under uvicorn in its own process; its base URL."""
    port = free_port()
    args = [str(BIN / "uvicorn"), "bench.bare_app:app", "--port", str(port), "--log-level", "warning"]
    return serve(args, env, port, logs / "bare.log"), f"http://127.0.0.1:{port}"


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One request for `load`."""
    return {
        "url": url,
        "body": json.dumps(body, ensure_ascii=False),
        "headers": {"Content-Type": "application/json", **(headers or {})},
    }


@dataclass
class BenchStack:
    """PostgreSQL (fsync off) and a Temporal dev server of the benchmark's own, the settings every
    process reads, and the processes started on them (stopped by `close`)."""

    root: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _servers: list[Any] = field(default_factory=list)

    def start(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)

    def worker(self, integration: str) -> None:
        log = self.root / f"worker-{len(self.procs)}.log"
        self.procs.append(
            subprocess.Popen(
                [str(BIN / "happ"), "worker", "--integration", integration],
                env=self.env,
                cwd=ROOT,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
        )

    def api(self) -> str:
        proc, base = serve_happ_api(self.env, self.root)
        self.procs.append(proc)
        return base

    def bare(self) -> str:
        proc, base = serve_bare(self.env, self.root)
        self.procs.append(proc)
        return base

    def close(self) -> None:
        stop(self.procs)
        for server in reversed(self._servers):
            server.stop()


# The WEBHOOK_TOKEN of every integration a bench stack serves.
BENCH_HOOK_TOKEN = "bench-hook-" + "0" * 32
BENCH_HOOK = {"Authorization": f"Bearer {BENCH_HOOK_TOKEN}"}


async def bench_stack(root: Path, integrations: list[str], temporal: bool = True) -> BenchStack:
    """The servers and a prepared database (migrations, Schedules) for `integrations`."""
    from control.schedules import setup_integration
    from happ_integ.embedded import EmbeddedPostgres, EmbeddedTemporal
    from happ_integ.integration import discover_integrations
    from happ_integ.keys import generate_key
    from happ_integ.ops.resources import close_resources, open_resources
    from happ_integ.provision import prepare_integration
    from happ_integ.settings import Settings
    from happ_integ.temporal import connect_settings

    pg = EmbeddedPostgres(root / "pg", port=free_port(), fsync=False)
    pg.start()
    stack = BenchStack(root, {}, _servers=[pg])
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "HAPP_SECRET_KEY": generate_key(),
        # As production runs (`happ api` refuses to start without one): every payload encrypted.
        "HAPP_PAYLOAD_KEY": generate_key(),
        "HAPP_INTEGRATIONS": ",".join(integrations),
        "HAPP_LOG_FORMAT": "json",
        # Nobody listens here: a benchmark without Temporal proves it needs none.
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    if temporal:
        server = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
        server.start()
        stack._servers.append(server)
        env["TEMPORAL_ADDRESS"] = server.address
    stack.env = env
    settings = Settings(
        DATABASE_URL=pg.url,
        TEMPORAL_ADDRESS=env["TEMPORAL_ADDRESS"],
        HAPP_SECRET_KEY=env["HAPP_SECRET_KEY"],
        HAPP_PAYLOAD_KEY=env["HAPP_PAYLOAD_KEY"],
    )
    found = discover_integrations(integrations)
    resources = await open_resources(settings, found)
    try:
        for integration in found.values():
            if temporal:
                await setup_integration(resources, await connect_settings(settings), integration)
            else:
                await prepare_integration(resources, integration)
            # Handler routes authenticate by default: the load carries `stack.hook`.
            await resources.creds(integration.name).set_many({"WEBHOOK_TOKEN": BENCH_HOOK_TOKEN})
    finally:
        await close_resources(resources)
    return stack


@asynccontextmanager
async def call_bench_stack(root: Path, handling: dict[str, Any]) -> AsyncIterator[tuple[Any, str, str]]:
    """The sofa call stack of the end-to-end tests (simulated voice assistant and NetHunt, the dev
    server), with one `happ worker` and one `happ api` process of their own and bench.bare_app
    beside them: `(calls, api_base, bare_base)`. The voice assistant takes each call and sends
    nothing, so the benchmark decides what the calls hear."""
    from happ_integ.embedded import EmbeddedPostgres
    from tests.e2e.call_stack import start_call_stack

    pg = EmbeddedPostgres(root / "pg", port=free_port(), fsync=False)
    pg.start()
    try:
        calls = await start_call_stack(pg.url, root / "logs", None, handling=handling)
        bare = BenchStack(root, calls.env)
        try:
            calls.start_worker()
            yield calls, await calls.start_api(), bare.bare()
        finally:
            bare.close()
            await calls.close()
    finally:
        pg.stop()
