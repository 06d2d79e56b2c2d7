"""What `ctx.db.insert` costs over a plain asyncpg INSERT on the same server (inline mode).

Both sides run on PostgreSQL with fsync off and after a warm-up, so neither is slowed by the
disk or by first use, and the ratio is the framework's own cost per operation.

The baseline is the same statement through asyncpg directly, so the ratio is the framework's
overhead (validation, identifier checks, type coercion, JSON normalisation, logging).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from happ_integ.context_clients import DbClient
from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port
from happ_integ.inline import InlineExecutor
from happ_integ.logs import CaptureSink, HandlerLogger
from happ_integ.ops import Resources
from happ_integ.settings import Settings
from happ_integ.stores.creds import SecretBox
from happ_integ.stores.pool import create_pool

ROWS = 2000
WARMUP = 50
MAX_RATIO = 3.0


@dataclass(frozen=True)
class Result:
    name: str
    baseline_s: float
    measured_s: float
    max_ratio: float
    count: int = ROWS

    @property
    def ratio(self) -> float:
        return self.measured_s / self.baseline_s

    @property
    def ok(self) -> bool:
        return self.ratio <= self.max_ratio

    def line(self) -> str:
        verdict = "ok" if self.ok else f"OVER {self.max_ratio}x"
        return (
            f"{self.name}: {self.ratio:.2f}x baseline ({self.measured_s * 1e3 / self.count:.2f} ms vs "
            f"{self.baseline_s * 1e3 / self.count:.2f} ms each) {verdict}"
        )


async def run() -> Result:
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedPostgres(Path(folder) / "pg", port=free_port(), fsync=False)
        server.start()
        try:
            pool = await create_pool(server.url, min_size=1, max_size=2)
            await pool.execute("CREATE TABLE bench_calls (id text PRIMARY KEY, status text, meta jsonb)")
            for i in range(WARMUP):  # the statement prepared, the pool's connections open
                await pool.execute(
                    "INSERT INTO bench_calls (id, status, meta) VALUES ($1, $2, $3)", f"warm{i}", "x", {}
                )
            started = time.perf_counter()
            for i in range(ROWS):
                await pool.execute(
                    "INSERT INTO bench_calls (id, status, meta) VALUES ($1, $2, $3)",
                    f"raw{i}",
                    "initiated",
                    {"i": i},
                )
            baseline = time.perf_counter() - started
            resources = Resources(
                pool=pool,
                settings=Settings(DATABASE_URL=server.url),
                http=httpx.AsyncClient(),
                box=SecretBox(Fernet.generate_key().decode()),
                integrations={},
            )
            db = DbClient(InlineExecutor(resources, HandlerLogger(CaptureSink())), "bench")
            for i in range(WARMUP):
                await db.insert("calls", {"id": f"warm-ctx{i}", "status": "x", "meta": {}})
            started = time.perf_counter()
            for i in range(ROWS):
                await db.insert("calls", {"id": f"ctx{i}", "status": "initiated", "meta": {"i": i}})
            measured = time.perf_counter() - started
            await resources.http.aclose()
            await pool.close()
        finally:
            server.stop()
    return Result("ctx.db.insert vs asyncpg", baseline, measured, MAX_RATIO)
