"""agent-init for a call in flight, at 32 concurrent requests, against a bare FastAPI route.

The agent waits for agent-init before it speaks, so its tail latency is what a caller hears. The
gateway (`happ api`, its own process) answers from the call's stored lookup; the baseline is a
bare FastAPI + uvicorn app (also its own process) answering the same JSON. Both are loaded over
real HTTP from this process, in alternating rounds, and compared by p50 and p99.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port, wait_for_port
from happ_integ.keys import generate_key

CONCURRENCY = 32
REQUESTS = 800
ROUNDS = 3
MAX_P99_RATIO = 3.0
PHONE = "+380994829573"

BARE_APP = textwrap.dedent(
    """
    from datetime import UTC, datetime
    from fastapi import FastAPI
    from happ_integ.calls.clock import spoken_date

    app = FastAPI()
    VARIABLES = {"client_name": "Іван Петренко", "company": "ТОВ Компанія", "lead_source": "Facebook", "call_id": "c_bench"}

    @app.post("/sofa/webhook/agent-init")
    async def agent_init(body: dict) -> dict:
        return {"type": "conversation_initiation_client_data",
                "dynamic_variables": {**VARIABLES, **spoken_date(datetime.now(UTC), "Europe/Kyiv")}}
    """
)


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class AgentInitResult:
    name: str
    happ: Latency
    bare: Latency

    @property
    def ratio(self) -> float:
        return self.happ.p99_ms / self.bare.p99_ms

    @property
    def ok(self) -> bool:
        return self.ratio <= MAX_P99_RATIO

    def line(self) -> str:
        verdict = "ok" if self.ok else f"OVER {MAX_P99_RATIO}x"
        return (
            f"{self.name}: p99 {self.ratio:.2f}x bare (happ p50 {self.happ.p50_ms:.1f} ms, p99 "
            f"{self.happ.p99_ms:.1f} ms; bare p50 {self.bare.p50_ms:.1f} ms, p99 {self.bare.p99_ms:.1f} ms) {verdict}"
        )


def _serve(args: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, proc, args[0], log, timeout=60)
    return proc


async def _load(url: str) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(REQUESTS))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def user() -> None:
            for _ in queue:
                began = time.perf_counter()
                resp = await http.post(url, json={"phone_number": PHONE})
                latencies.append((time.perf_counter() - began) * 1000)
                assert resp.status_code == 200 and resp.json()["dynamic_variables"]["call_id"] == "c_bench", (
                    resp.text
                )

        await asyncio.gather(*(user() for _ in range(CONCURRENCY)))
    return latencies


def _summary(samples: list[list[float]]) -> Latency:
    p50 = statistics.median(statistics.median(s) for s in samples)
    p99 = statistics.median(statistics.quantiles(s, n=100)[98] for s in samples)
    return Latency(p50, p99)


async def run() -> AgentInitResult:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pg = EmbeddedPostgres(root / "pg", port=free_port())
        pg.start()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            env = {
                **os.environ,
                "DATABASE_URL": pg.url,
                # agent-init needs no Temporal: an address nobody listens on proves it.
                "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
                "HAPP_SECRET_KEY": generate_key(),
                "HAPP_INTEGRATIONS": "sofa",
                "HAPP_LOG_FORMAT": "json",
            }
            from happ_integ.integration import discover_integrations
            from happ_integ.runtime import close_resources, open_resources
            from happ_integ.settings import Settings
            from happ_integ.setup import prepare_integration

            settings = Settings(DATABASE_URL=pg.url, HAPP_SECRET_KEY=env["HAPP_SECRET_KEY"])
            resources = await open_resources(settings, discover_integrations(["sofa"]))
            await prepare_integration(resources, resources.integrations["sofa"])
            await close_resources(resources)
            conn = await asyncpg.connect(pg.url)
            await conn.execute(
                """INSERT INTO sofa_calls (call_id, workflow_id, phone, status, attempt, variables)
                   VALUES ('c_bench', 'sofa:call:c_bench', $1, 'dialing', 1, $2::jsonb)""",
                PHONE,
                '{"client_name": "Іван Петренко", "company": "ТОВ Компанія", "lead_source": "Facebook"}',
            )
            await conn.close()
            happ_port, bare_port = free_port(), free_port()
            bin_dir = Path(sys.executable).parent
            procs.append(
                _serve(
                    [str(bin_dir / "happ"), "api"],
                    {**env, "HAPP_API_PORT": str(happ_port)},
                    happ_port,
                    root / "api.log",
                )
            )
            (root / "bare_app.py").write_text(BARE_APP)
            procs.append(
                _serve(
                    [
                        str(bin_dir / "uvicorn"),
                        "bare_app:app",
                        "--port",
                        str(bare_port),
                        "--log-level",
                        "warning",
                        "--app-dir",
                        folder,
                    ],
                    env,
                    bare_port,
                    root / "bare.log",
                )
            )
            happ_url = f"http://127.0.0.1:{happ_port}/sofa/webhook/agent-init"
            bare_url = f"http://127.0.0.1:{bare_port}/sofa/webhook/agent-init"
            await _load(happ_url)  # warm-up: connections, first imports, the PostgreSQL pool
            await _load(bare_url)
            happ, bare = [], []
            for _ in range(ROUNDS):
                bare.append(await _load(bare_url))
                happ.append(await _load(happ_url))
            return AgentInitResult(
                "agent-init, call in flight, 32 concurrent", _summary(happ), _summary(bare)
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            pg.stop()


if __name__ == "__main__":
    print(asyncio.run(run()).line())
