"""The whole product in one session: API (in-process ASGI), a worker on the dev server, real
PostgreSQL, and the loopback peers over real HTTP. Secrets are canaries, searched for later."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from temporalio.client import Client

from api.app import KEEP_ALIVE_SECONDS, create_app
from api.runtime import ApiRuntime
from happ_integ.dev import EmbeddedServer
from happ_integ.embedded import EmbeddedTemporal
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink, JsonTransport, MultiSink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from simulator.app import SimulatorStates, create_simulator_app
from tests.e2e.gw_integration import gw
from worker import build_workers

ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
CANARY_NETHUNT_KEY = "canary-nethunt-" + uuid.uuid4().hex
CANARY_VOICE_TOKEN = "canary-voice-" + uuid.uuid4().hex
GW_WEBHOOK_TOKEN = "hook-" + uuid.uuid4().hex
GW_ELEVENLABS_SECRET = "wsec_" + uuid.uuid4().hex
CANARIES = (CANARY_NETHUNT_KEY, CANARY_VOICE_TOKEN)
FOLDER = "leads"
PHONE = "+380994829573"


@dataclass
class Stack:
    settings: Settings
    http: httpx.AsyncClient
    temporal: Client
    runtime: ApiRuntime
    resources: Resources
    sims: SimulatorStates
    capture: CaptureSink
    json_log: io.StringIO
    record_id: str
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    # The WEBHOOK_TOKEN of both example and gw: what their handler routes take by default.
    hook: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {GW_WEBHOOK_TOKEN}"})

    async def reset_calls(self) -> None:
        await self.resources.pool.execute("DELETE FROM example_calls")

    def log_text(self) -> str:
        return self.json_log.getvalue()


async def serve(app: Any, port: int, lifespan: str = "off") -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Serve an ASGI app over real HTTP on loopback until `server.should_exit` is set."""
    server = EmbeddedServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan=lifespan,  # type: ignore[arg-type]
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture(scope="session")
async def stack(pg_url: str, temporal_dev: EmbeddedTemporal, temporal_client: Client) -> AsyncIterator[Stack]:
    sims = SimulatorStates()
    sims.nethunt.api_key = CANARY_NETHUNT_KEY
    sims.voice.token = CANARY_VOICE_TOKEN
    sims.nethunt.add_folder("Leads", folder_id=FOLDER)
    record_id = sims.nethunt.add_record(FOLDER, {"Name": "Іван", "Phone": [PHONE], "Company": "ТОВ Компанія"})
    sim_port = free_port()
    sim_server, sim_task = await serve(create_simulator_app(sims), sim_port)
    sim = f"http://127.0.0.1:{sim_port}"

    settings = Settings(
        DATABASE_URL=pg_url,
        TEMPORAL_ADDRESS=temporal_dev.address,
        HAPP_ADMIN_TOKEN=ADMIN_TOKEN,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_SAAS_API_URL=f"{sim}/voice",
        HAPP_NETHUNT_API_URL=f"{sim}/nethunt/api/v1/zapier",
        HAPP_KEYCRM_API_URL=f"{sim}/keycrm/v1",
        HAPP_LOG_FORMAT="json",
        HAPP_INTEGRATIONS="example",
        # ctx.http may reach the loopback peers (127.0.0.1), as `happ dev --simulate` allows.
        HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1",
    )
    integrations = {**discover_integrations(["example"]), "gw": gw}
    capture, json_log = CaptureSink(), io.StringIO()
    sink = MultiSink(capture, JsonTransport(json_log))
    app = create_app(settings, integrations, sink=sink)
    runtime: ApiRuntime = app.state.runtime
    await runtime.start()
    resources = await open_resources(settings, integrations)
    workers = build_workers(temporal_client, resources, integrations, sink)
    worker_tasks = [asyncio.create_task(w.run()) for w in workers]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ", timeout=60)
    stack = Stack(settings, http, temporal_client, runtime, resources, sims, capture, json_log, record_id)
    setup = await http.post("/example/setup", headers=stack.admin)
    assert setup.status_code == 200, setup.text
    secrets = {
        "NETHUNT_EMAIL": sims.nethunt.email,
        "NETHUNT_API_KEY": CANARY_NETHUNT_KEY,
        "NETHUNT_FOLDER_ID": FOLDER,
        "SAAS_AUTH_TOKEN": CANARY_VOICE_TOKEN,
        "SAAS_ASSISTANT_ID": "42",
        "WEBHOOK_TOKEN": GW_WEBHOOK_TOKEN,
    }
    assert (await http.put("/example/secrets", json=secrets, headers=stack.admin)).status_code == 200
    assert (await http.post("/gw/setup", headers=stack.admin)).status_code == 200
    # The hourly schedule must not fire on its own mid-suite; cron/trigger still fires it on demand.
    await temporal_client.get_schedule_handle("example:retry").pause(note="paused for the test session")
    gw_secrets = {"WEBHOOK_TOKEN": GW_WEBHOOK_TOKEN, "ELEVENLABS_WEBHOOK_SECRET": GW_ELEVENLABS_SECRET}
    assert (await http.put("/gw/secrets", json=gw_secrets, headers=stack.admin)).status_code == 200
    yield stack
    await http.aclose()
    for w in workers:
        await w.shutdown()
    await asyncio.gather(*worker_tasks, return_exceptions=True)
    await close_resources(resources)
    await runtime.stop()
    sim_server.should_exit = True
    await sim_task
