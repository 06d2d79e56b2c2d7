"""KeyCRM's 429 honoured across workers: two worker processes, each with its own pool and HTTP client,
make keycrm.* operations with the same API key against a KeyCRM (simulated, over real HTTP) that
allows fewer requests than the pacing budget, like a KeyCRM account whose limit is lower than the
configured one, or shared with another client of the key.

Once KeyCRM has answered 429 with a Retry-After, it sees no request with that key, from either
process, until the Retry-After has passed; and every operation still gets its answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from happ_integ.embedded.process import free_port
from happ_integ.integration import Integration
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from simulator.keycrm import DEMO_PHONE, KeyCrmState, create_keycrm_app, seed_demo
from tests.e2e.conftest import serve

INTEGRATION = "keycrm_limited"
API_KEY = "keycrm-limited-" + uuid.uuid4().hex
# KeyCRM here allows 4 requests per 3 s per key; the pacer's budget is twice that (120 a minute, a
# request every 0.5 s), as the default 60 a minute is twice a KeyCRM key that allows 4 per 8 s: the
# pacer alone does not keep such a key below its limit, so the 429s come. The window is short so
# that the test takes seconds.
LIMIT, WINDOW_SECONDS, PER_MINUTE = 4, 3.0, 120
WORKERS, TASKS, REQUESTS = 2, 3, 2
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Peer:
    state: KeyCrmState
    ids: dict[str, int]
    env: dict[str, str]


@pytest.fixture
async def peer(pg_url: str) -> AsyncIterator[Peer]:
    state = KeyCrmState(api_key=API_KEY, rate_limit=LIMIT, rate_window_seconds=WINDOW_SECONDS)
    ids = seed_demo(state)
    port = free_port()
    server, task = await serve(create_keycrm_app(state), port)
    env = {
        "DATABASE_URL": pg_url,
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_KEYCRM_API_URL": f"http://127.0.0.1:{port}/v1",
    }
    settings: dict[str, Any] = dict(env)
    resources = await open_resources(
        Settings(**settings), {INTEGRATION: Integration(INTEGRATION, secrets=["KEYCRM_API_KEY"])}
    )
    await resources.creds(INTEGRATION).set_many({"KEYCRM_API_KEY": API_KEY})
    await close_resources(resources)
    yield Peer(state, ids, env)
    server.should_exit = True
    await task


async def _workers(peer: Peer) -> list[dict[str, Any]]:
    """Start the worker processes, let them go together, and collect what each operation answered."""
    argv = [INTEGRATION, TASKS, REQUESTS, PER_MINUTE, DEMO_PHONE, peer.ids["card"]]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ops.keycrm_worker",
            *map(str, argv),
            cwd=ROOT,
            env={**os.environ, **peer.env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(WORKERS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = await asyncio.wait_for(asyncio.gather(*(proc.communicate() for proc in procs)), 120)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [proc.returncode for proc in procs] == [0] * WORKERS
    return [item for stdout, _ in outputs for item in json.loads(stdout.decode().strip().splitlines()[-1])]


async def test_after_a_429_no_worker_sends_with_the_key_before_its_retry_after(peer: Peer) -> None:
    results = await _workers(peer)

    # Every operation got its answer (a buyer by phone, the card by id).
    assert len(results) == WORKERS * TASKS * REQUESTS
    assert [r for r in results if "error" in r] == []
    for result in results:
        if result["op"] == "keycrm.find_buyers":
            assert [b["id"] for b in result["answer"]["buyers"]] == [peer.ids["buyer"]]
        else:
            assert result["answer"]["card"]["id"] == peer.ids["card"]

    hits = peer.state.hits
    refused = [hit for hit in hits if hit.status == 429]
    # KeyCRM's limit was reached (else this test would show nothing) …
    assert refused, "the workers never reached KeyCRM's limit"
    assert len(hits) - len(refused) == len(results)  # … and each operation's request got through once.
    # After each 429, KeyCRM saw no request with the key until its Retry-After had passed.
    for no in refused:
        assert no.retry_after is not None
        too_soon = [round(hit.at - no.at, 3) for hit in hits if no.at < hit.at < no.at + no.retry_after]
        assert too_soon == [], (
            f"requests {too_soon} s after a 429 with Retry-After {no.retry_after} "
            f"({len(refused)} of {len(hits)} requests answered 429)"
        )
