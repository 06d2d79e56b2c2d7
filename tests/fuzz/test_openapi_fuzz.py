"""Schemathesis over every integration's OpenAPI document, against the product over real HTTP.

The API and a worker run on a Temporal dev server and a database of their own (the fuzzer may
change any secret or config it is allowed to), with the simulated peers behind them. Each
document is fuzzed without credentials and with the admin token, and the example's (whose
handler routes take WEBHOOK_TOKEN, as every handler route does by default) with its WEBHOOK_TOKEN
too, in positive and negative mode: no answer may be a server error, or a status, content type or
body the document does not describe. The seed is fixed so CI is repeatable; `make fuzz` runs longer with random seeds:

    HAPP_FUZZ_SEED=random HAPP_FUZZ_EXAMPLES=200 make test PYTEST_ARGS=tests/fuzz
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

from api.app import create_app
from control.schedules import setup_integration
from happ_integ.embedded import EmbeddedTemporal
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.keys import generate_key
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.temporal import connect_client
from simulator.app import SimulatorStates, create_simulator_app
from tests.e2e.conftest import serve
from worker import build_workers

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED = os.environ.get("HAPP_FUZZ_SEED", "20261201")
EXAMPLES = int(os.environ.get("HAPP_FUZZ_EXAMPLES", "12"))
ADMIN_TOKEN = "fuzz-admin-" + uuid.uuid4().hex
HOOK_TOKEN = "fuzz-hook-" + uuid.uuid4().hex
# Every integration, the example (loaded only by `happ dev` or by name) included.
INTEGRATIONS = sorted(discover_integrations(dev=True))
# Who fuzzes what: everyone anonymously and as admin; with WEBHOOK_TOKEN, the handler routes
# (the call flow's webhooks would start real calls that outlive the session).
CASES = [(name, auth) for name in INTEGRATIONS for auth in ("anonymous", "admin")] + [("example", "webhook")]


@dataclass
class FuzzStack:
    base: str
    temporal: Client


@pytest.fixture(scope="module")
async def fuzz_stack(pg_url: str) -> AsyncIterator[FuzzStack]:
    database = f"fuzz_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    temporal = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
    temporal.start()
    sims = SimulatorStates.demo()
    sim_server, sim_task = await serve(create_simulator_app(sims), free_port())
    sim = f"http://127.0.0.1:{sim_server.config.port}"
    settings = Settings(
        DATABASE_URL=pg_url.rsplit("/", 1)[0] + f"/{database}",
        TEMPORAL_ADDRESS=temporal.address,
        HAPP_ADMIN_TOKEN=ADMIN_TOKEN,
        HAPP_SECRET_KEY=generate_key(),
        HAPP_SAAS_API_URL=f"{sim}/voice",
        HAPP_NETHUNT_API_URL=f"{sim}/nethunt/api/v1/zapier",
        HAPP_KEYCRM_API_URL=f"{sim}/keycrm/v1",
        HAPP_ELEVENLABS_API_URL=f"{sim}/elevenlabs",
        HAPP_LOG_FORMAT="json",
    )
    integrations = discover_integrations(dev=True)
    client = await connect_client(temporal.address)
    resources = await open_resources(settings, integrations)
    for integration in integrations.values():
        await setup_integration(resources, client, integration)
        credentials = {**sims.credentials(), "WEBHOOK_TOKEN": HOOK_TOKEN}
        names = set(integration.all_secret_names())
        await resources.creds(integration.name).set_many({k: v for k, v in credentials.items() if k in names})
    workers = build_workers(client, resources, integrations, lambda event: None)
    worker_tasks = [asyncio.create_task(w.run()) for w in workers]
    api_server, api_task = await serve(
        create_app(settings, integrations, sink=lambda e: None), free_port(), lifespan="on"
    )
    try:
        yield FuzzStack(f"http://127.0.0.1:{api_server.config.port}", client)
    finally:
        api_server.should_exit = True
        await api_task
        for w in workers:
            await w.shutdown()
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        await close_resources(resources)
        sim_server.should_exit = True
        await sim_task
        temporal.stop()


async def schemathesis(base: str, integration: str, headers: list[str], seed: str) -> tuple[int, str]:
    args = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{base}/{integration}/openapi.json",
        "--url",
        f"{base}/{integration}",
        "--checks",
        CHECKS,
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        seed,
        "--request-timeout",
        "70",
        # One worker: with threads, CPython 3.11's ast.parse (which hypothesis calls) can fail
        # with "AST constructor recursion depth mismatch".
        "--workers",
        "1",
        "--no-color",
        *[part for header in headers for part in ("-H", header)],
    ]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("integration", "auth"), CASES)
async def test_every_answer_is_documented_and_none_is_a_server_error(
    fuzz_stack: FuzzStack, integration: str, auth: str
) -> None:
    seed = str(random.randrange(1, 2**31)) if SEED == "random" else SEED
    token = {"admin": ADMIN_TOKEN, "webhook": HOOK_TOKEN}.get(auth)
    headers = [f"Authorization: Bearer {token}"] if token else []
    code, output = await schemathesis(fuzz_stack.base, integration, headers, seed)
    assert code == 0, f"schemathesis (seed {seed}) found problems in /{integration}:\n{output[-6000:]}"


async def test_no_workflow_is_left_running_or_retrying(fuzz_stack: FuzzStack) -> None:
    """Runs after the fuzzing above (pytest keeps file order): every run it started has ended,
    calls and campaigns included. An integration's `CallQueue` is its semaphore, a workflow that
    is meant to stay running once a call or a campaign started it."""
    running: list[str] = []
    for _ in range(60):
        running = [
            w.id
            async for w in fuzz_stack.temporal.list_workflows("ExecutionStatus = 'Running'")
            if not w.id.endswith(":call-queue")
        ]
        if not running:
            return
        await asyncio.sleep(1)
    pytest.fail(f"workflows still running a minute after the fuzzing: {running[:10]}")
