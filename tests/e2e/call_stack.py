"""The product as it runs in production, for end-to-end call tests: worker processes of their own
(`happ worker --integration sofa`), the gateway over real HTTP, the dev server, PostgreSQL, and the
simulated voice assistant, ElevenLabs and NetHunt playing every call they are asked to make."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from api.app import create_app
from control.schedules import setup_integration
from happ_integ.calls.contact_policy import RELAXED_CONTACT_POLICY
from happ_integ.dev import EmbeddedServer
from happ_integ.embedded import EmbeddedTemporal
from happ_integ.embedded.process import free_port, wait_for_port
from happ_integ.integration import discover_integrations
from happ_integ.keys import generate_key
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from simulator.app import SimulatorStates, create_simulator_app
from simulator.calls import Play, SimCall
from tests.e2e.conftest import serve
from tests.e2e.history_text import PAYLOAD_KEY

HOOK_TOKEN = "hook-" + uuid.uuid4().hex
ADMIN = "admin-" + uuid.uuid4().hex


def phone(n: int) -> str:
    return f"+38099{n:07d}"


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class CallStack:
    integration: str
    settings: Settings
    env: dict[str, str]
    base: str
    http: httpx.AsyncClient
    sims: SimulatorStates
    resources: Resources
    logs: Path
    capture: CaptureSink
    temporal: EmbeddedTemporal
    servers: list[tuple[EmbeddedServer, asyncio.Task[None]]] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    records: dict[str, str] = field(default_factory=dict)  # phone → NetHunt record id

    @property
    def hook(self) -> dict[str, str]:
        """The headers of a CRM-side caller of call-originate."""
        return {"Authorization": f"Bearer {HOOK_TOKEN}"}

    def start_worker(self) -> WorkerProcess:
        log = self.logs / f"worker-{len(self.workers) + 1}.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "happ"), "worker", "--integration", self.integration],
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(proc, log)
        self.workers.append(worker)
        return worker

    async def start_api(self, **env: str) -> str:
        """Another gateway replica (`happ api`, a process of its own) on the same stack, with `env`
        added to its environment; its base URL."""
        port = free_port()
        log = self.logs / f"api-{port}.log"
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "happ"), "api"],
            env={**self.env, **env, "HAPP_API_PORT": str(port)},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append(WorkerProcess(proc, log))  # stopped with the workers
        wait_for_port("127.0.0.1", port, proc, "happ api", log, timeout=60)
        return f"http://127.0.0.1:{port}"

    def add_leads(self, numbers: list[str]) -> None:
        """A lead for each number in the integration's CRM: a NetHunt record, or a KeyCRM buyer and
        an open card in the demo pipeline's first status."""
        for number in numbers:
            name = f"Лід {number[-4:]}"
            if self.integration == "keycrm":
                buyer = self.sims.keycrm.add_buyer(name, number)
                card = self.sims.keycrm.add_card(
                    101, {"full_name": name, "phone": number, "client_id": buyer}
                )
                self.records[number] = str(card)
                continue
            self.records[number] = self.sims.nethunt.add_record(
                "leads", {"Name": name, "Phone": [number], "Company": "ТОВ Тест", "Source": "Ads"}
            )

    async def originate(self, numbers: list[str]) -> list[str]:
        resp = await self.http.post(
            f"/{self.integration}/webhook/call-originate",
            json={"calls": [{"phone_number": n} for n in numbers]},
            headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
        )
        assert resp.status_code == 200, resp.text
        results = resp.json()["calls"]
        assert all(r["success"] for r in results), results
        return [r["callId"] for r in results]

    async def dialed(self, number: str, seconds: float = 30) -> tuple[str, SimCall]:
        """Originate a call to `number` (a lead for it in the CRM) and wait for the voice assistant
        to receive it: `(call_id, the simulator's call)`."""
        self.add_leads([number])
        (call_id,) = await self.originate([number])
        deadline = time.monotonic() + seconds
        while not any(c.call_id == call_id for c in self.sims.voice.calls):
            assert time.monotonic() < deadline, (
                "the call never reached the voice assistant\n" + self.worker_logs()
            )
            await asyncio.sleep(0.1)
        return call_id, self.sims.voice.call(call_id)

    async def state(self, call_id: str) -> dict[str, Any]:
        """`GET /{integration}/calls/{call_id}`: the call's workflow state."""
        resp = await self.http.get(
            f"/{self.integration}/calls/{call_id}", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def until_status(self, call_id: str, wanted: str, seconds: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while (now := await self.state(call_id))["status"] != wanted:
            assert time.monotonic() < deadline, (
                f"{call_id} is {now['status']}, not {wanted}\n" + self.worker_logs()
            )
            await asyncio.sleep(0.1)
        return now

    async def rows(self, call_ids: list[str]) -> list[dict[str, Any]]:
        rows = await self.resources.pool.fetch(
            f"SELECT call_id, status, attempt, reason FROM {self.integration}_calls WHERE call_id = ANY($1)",
            call_ids,
        )
        return [dict(r) for r in rows]

    async def until_all(
        self, call_ids: list[str], statuses: set[str], seconds: float
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            rows = await self.rows(call_ids)
            if len(rows) == len(call_ids) and all(r["status"] in statuses for r in rows):
                return rows
            if time.monotonic() > deadline:
                pending = [r for r in rows if r["status"] not in statuses]
                raise AssertionError(
                    f"{len(pending)} of {len(call_ids)} calls did not end in {statuses}: {pending[:5]}\n"
                    + self.worker_logs()
                )
            await asyncio.sleep(0.5)

    async def until(self, test: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not test():
            if time.monotonic() > deadline:
                raise AssertionError("the condition never came true")
            await asyncio.sleep(0.1)

    def worker_output(self) -> str:
        """Everything every worker process wrote (its JSON log lines)."""
        return "\n".join(w.log.read_text() for w in self.workers)

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-3000:]}" for w in self.workers)

    async def slots_match_the_calls_on_the_line(self) -> None:
        """No CallQueue slot leaked: its holders are exactly the calls dialing or talking."""
        from control.client import queue_state
        from happ_integ.temporal import connect_settings

        queue = await queue_state(await connect_settings(self.settings), self.integration)
        rows = await self.resources.pool.fetch(
            f"SELECT workflow_id FROM {self.integration}_calls WHERE status IN ('dialing', 'in_progress')"
        )
        assert set(queue.holders) == {r["workflow_id"] for r in rows}, (queue.holders, rows)

    def crm_writes(self, number: str) -> dict[str, int]:
        """The NetHunt writes of each kind a number's lead got: one each is a call's post-call."""
        record = self.records[number]
        return {
            kind: self.writes_to(record, kind)
            for kind in ("update-record", "create-call-log", "create-comment")
        }

    def writes_to(self, record_id: str, kind: str) -> int:
        """How many requests of one kind (create-comment, create-call-log, update-record) the CRM got for a record."""
        return len(self.sims.nethunt.requests_to("POST", f"/api/v1/zapier/actions/{kind}/{record_id}"))

    async def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        await self.http.aclose()
        for server, task in reversed(self.servers):
            server.should_exit = True
            await task
        await close_resources(self.resources)
        self.temporal.stop()


async def start_call_stack(
    pg_url: str,
    logs: Path,
    outcome: Play | None,
    *,
    integration: str = "sofa",
    handling: dict[str, Any] | None = None,
    llm: bool = False,
    prepare: Callable[[SimulatorStates], None] | None = None,
    temporal_db: Path | None = None,
) -> CallStack:
    """A stack of its own: a new database on the session's PostgreSQL and a Temporal dev server,
    so no call, queue slot or secret of another test module is in its way. `outcome` is how the
    simulated voice assistant (or ElevenLabs, for an ElevenLabs provider) plays every call; `llm`
    points the analysis at the simulated model."""
    database = f"calls_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    pg_url = pg_url.rsplit("/", 1)[0] + f"/{database}"
    # A file-backed server outlives a stop and a start on the same port (the fault tests do that).
    temporal = EmbeddedTemporal(db_file=temporal_db, port=free_port(), ui_port=None)
    temporal.start()
    temporal_address = temporal.address
    sims = SimulatorStates.demo(auto_play=outcome)
    sims.pause_seconds = 0.05
    if prepare is not None:
        prepare(sims)  # e.g. the peers' credentials: every secret is what the simulator accepts
    sim_server = await serve(create_simulator_app(sims), free_port())
    sim = f"http://127.0.0.1:{sim_server[0].config.port}"
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "HAPP_SECRET_KEY": generate_key(),
        # Production's default: every payload encrypted (history_text decrypts with the same key).
        "HAPP_PAYLOAD_KEY": PAYLOAD_KEY,
        "HAPP_ADMIN_TOKEN": ADMIN,
        "HAPP_SAAS_API_URL": f"{sim}/voice",
        "HAPP_NETHUNT_API_URL": f"{sim}/nethunt/api/v1/zapier",
        "HAPP_KEYCRM_API_URL": f"{sim}/keycrm/v1",
        "HAPP_ELEVENLABS_API_URL": f"{sim}/elevenlabs",
        "HAPP_LOG_FORMAT": "json",
        "HAPP_INTEGRATIONS": integration,
    }
    if llm:
        env |= {
            "HAPP_LLM_BASE_URL": f"{sim}/llm/v1",
            "HAPP_LLM_MODEL": sims.llm.model,
            "HAPP_LLM_API_KEY": sims.llm.api_key,
        }
    settings = Settings(**{k: v for k, v in env.items() if k.startswith(("HAPP_", "DATABASE_", "TEMPORAL_"))})
    integrations = discover_integrations([integration])
    capture = CaptureSink()
    api_port = free_port()
    gateway = f"http://127.0.0.1:{api_port}/{integration}"
    sims.voice.call_events_url = f"{gateway}/webhook/call-events"
    sims.voice.agent_init_url = f"{gateway}/webhook/agent-init"
    # The voice assistant and the agent hold the integration's sender token (its WEBHOOK_TOKEN).
    sims.voice.webhook_headers = {"Authorization": f"Bearer {HOOK_TOKEN}"}
    sims.voice.postcall_url = sims.elevenlabs.postcall_url = f"{gateway}/webhook/agent-postcall"
    sims.elevenlabs.webhook_secret = sims.voice.webhook_secret
    sims.elevenlabs.play = outcome
    api_server = await serve(create_app(settings, integrations, sink=capture), api_port, lifespan="on")
    resources = await open_resources(settings, integrations)
    from happ_integ.temporal import connect_settings

    await setup_integration(resources, await connect_settings(settings), integrations[integration])
    await resources.creds(integration).set_many({**sims.credentials(), "WEBHOOK_TOKEN": HOOK_TOKEN})
    await resources.config(integration).set(
        "call_handling",
        {"concurrency_limit": 3, "calling_hours": None, "postcall_timeout_seconds": 60, **(handling or {})},
    )
    # The tests dial the simulator's few numbers many times an hour: no cap unless a test sets one.
    await resources.config(integration).set("contact_policy", RELAXED_CONTACT_POLICY)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=120)
    logs.mkdir(parents=True, exist_ok=True)
    return CallStack(
        integration,
        settings,
        env,
        f"http://127.0.0.1:{api_port}",
        http,
        sims,
        resources,
        logs,
        capture,
        temporal,
        [sim_server, api_server],
    )
