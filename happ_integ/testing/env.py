"""`IntegrationTestEnv`: one integration, started against PostgreSQL and the simulated peers.

async with IntegrationTestEnv.start(integration, database_url=pg_url, durable=True) as env:
    await env.set_secrets(NETHUNT_API_KEY="")
    await env.set_config("status_map", {"callback": "Later"})
    result = await env.run("crm-lookup", {"call_id": "c_1", "phone_number": DEMO.phone})
    answer = await env.http.post("/webhook/create-order", json={...}, headers=env.headers)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar, overload

import httpx
from pydantic import BaseModel
from temporalio.client import Client

from api.app import create_app
from api.runtime import ApiRuntime
from control.client import handler_result, start_handler_run
from happ_integ.errors import HandlerTimedOut
from happ_integ.inline import run_inline
from happ_integ.integration import Integration
from happ_integ.keys import generate_key
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from happ_integ.testing.peers import peer_settings
from happ_integ.testing.servers import own_database, postgres_server, served, temporal
from simulator.app import SimulatorStates, create_simulator_app
from worker import build_workers

R = TypeVar("R", bound=BaseModel)

# How long `run` waits for a durable run; on the time-skipping server retry backoffs take no time.
DURABLE_WAIT_SECONDS = 300.0


class IntegrationTestEnv:
    """One integration, set up in a database of its own, talking to the simulated peers.

        async with IntegrationTestEnv.start(integration, database_url=pg_url) as env:
            result = await env.run("crm-lookup", {"call_id": "c_1", "phone_number": DEMO.phone})
            env.sims.nethunt.requests          # what the simulated NetHunt was asked
            env.log.named("No CRM record for this number")

    `start` runs the integration's setup (migrations, secrets, default configs) and gives each of
    its secrets the simulator's credential for it (what `happ dev --simulate` does); WEBHOOK_TOKEN,
    which handler routes take by default, gets a token of the env's own (`webhook_token`, sent by
    `headers`); SENDER_TOKEN stays unset, so the call webhooks take WEBHOOK_TOKEN too. Temporal
    payloads are encrypted under a payload key of the env's own, as in production.

    - `run(handler, payload)`: the handler inline (in this process) or durably (a `HandlerRun` on
      Temporal), as `durable` says: the same answer and the same `HappError` either way.
    - `http`: the gateway's routes of this integration (`/webhook/…`, `/health`, `/config/…`), in
      process; `headers` authenticates a handler route, `admin_headers` a built-in one. A durable
      route answers 503 unless the env is durable.
    - `sims`: the simulated peers' states (`nethunt`, `keycrm`, `voice`, `elevenlabs`, `llm`),
      seeded with the `DEMO` contact, to arrange and inspect; `log`: every event the runs logged.
    """

    def __init__(
        self,
        integration: Integration,
        *,
        durable: bool,
        settings: Settings,
        sims: SimulatorStates,
        log: CaptureSink,
        http: httpx.AsyncClient,
        webhook_token: str,
        resources: Resources,
        client: Client | None,
        start_secrets: Mapping[str, str],
    ) -> None:
        self.integration = integration
        self.durable = durable
        self.settings = settings
        self.sims = sims
        self.log = log
        self.http = http
        self.webhook_token = webhook_token
        self._resources = resources
        self._client = client
        self._start_secrets = dict(start_secrets)

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        integration: Integration,
        *,
        durable: bool = False,
        database_url: str | None = None,
        temporal_address: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[IntegrationTestEnv]:
        """Start everything `integration` needs; on exit stop it all and drop its database.

        `database_url`: a PostgreSQL server to make the env's database on (its user needs CREATEDB);
        None starts an embedded one for the env (a few seconds). `durable=True` runs handlers on
        Temporal: at `temporal_address` (a dev server that knows the project's search attributes),
        else on a time-skipping test server of the env's own. `settings`: environment settings by
        name over the env's own (`{"HAPP_HTTP_MAX_RESPONSE_BYTES": 2048}`). A `dev_only`
        integration (the example) runs like any other: the env runs what it is given.
        """
        async with AsyncExitStack() as stack:
            server = await stack.enter_async_context(postgres_server(database_url))
            own_url = await stack.enter_async_context(own_database(server, [integration.name]))
            sims = SimulatorStates.demo()
            peers = await stack.enter_async_context(served(create_simulator_app(sims)))
            payload_key = generate_key()
            client, address = None, None
            if durable:
                client, address = await stack.enter_async_context(temporal(temporal_address, payload_key))
            config = Settings(
                **{
                    "DATABASE_URL": own_url,
                    "TEMPORAL_ADDRESS": address,
                    "HAPP_SECRET_KEY": generate_key(),
                    "HAPP_PAYLOAD_KEY": payload_key,
                    "HAPP_ADMIN_TOKEN": secrets.token_urlsafe(32),
                    **peer_settings(peers),
                    **(settings or {}),
                }
            )
            integrations = {integration.name: integration}
            resources = await open_resources(config, integrations)
            stack.push_async_callback(close_resources, resources)
            await prepare_integration(resources, integration)
            webhook_token = f"test-hook-{uuid.uuid4().hex}"
            offered = {**sims.credentials(), "WEBHOOK_TOKEN": webhook_token}
            given = {n: offered[n] for n in integration.all_secret_names() if n in offered}
            await resources.creds(integration.name).set_many(given)
            log = CaptureSink()
            if client is not None:
                for worker in build_workers(client, resources, integrations, log):
                    await stack.enter_async_context(worker)
            app = create_app(config, integrations, sink=log)
            runtime: ApiRuntime = app.state.runtime
            await runtime.start()
            stack.push_async_callback(runtime.stop)
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(
                transport=transport, base_url=f"http://happ/{integration.name}/", timeout=60
            )
            await stack.enter_async_context(http)
            yield cls(
                integration,
                durable=durable,
                settings=config,
                sims=sims,
                log=log,
                http=http,
                webhook_token=webhook_token,
                resources=resources,
                client=client,
                start_secrets=given,
            )

    @property
    def name(self) -> str:
        return self.integration.name

    @property
    def headers(self) -> dict[str, str]:
        """What a handler route takes by default: `Authorization: Bearer <WEBHOOK_TOKEN>`."""
        return {"Authorization": f"Bearer {self.webhook_token}"}

    @property
    def admin_headers(self) -> dict[str, str]:
        """What the built-in routes take (`/setup`, `/secrets`, `/config/…`, `/calls`): the admin token."""
        return {"Authorization": f"Bearer {self.settings.require_admin_token()}"}

    @overload
    async def run(
        self, handler: str, payload: BaseModel | Mapping[str, Any], *, durable: bool | None = None
    ) -> BaseModel: ...

    @overload
    async def run(
        self,
        handler: str,
        payload: BaseModel | Mapping[str, Any],
        returns: type[R],
        *,
        durable: bool | None = None,
    ) -> R: ...

    async def run(
        self,
        handler: str,
        payload: BaseModel | Mapping[str, Any],
        returns: type[BaseModel] | None = None,
        *,
        durable: bool | None = None,
    ) -> BaseModel:
        """The handler's answer to `payload` (its payload model, or a dict validated into it).

            result = await env.run("crm-postcall", {"call_id": "c_1", …}, PostcallResult)

        `durable` (default: the env's) picks the mode; a failed run raises the `HappError` it
        failed with in both. `returns` checks the answer's type (and tells a type checker).
        """
        definition = self.integration.handler(handler)
        data = payload.model_dump(mode="json", by_alias=True) if isinstance(payload, BaseModel) else payload
        model = definition.payload_model.model_validate(data)
        trace_id = f"test-{definition.name}-{uuid.uuid4().hex[:8]}"
        if self.durable if durable is None else durable:
            if self._client is None:
                raise RuntimeError("a durable run needs Temporal: start the env with durable=True")
            handle = await start_handler_run(
                self._client,
                self.name,
                definition,
                model.model_dump(mode="json", by_alias=True),
                key=trace_id,
                trace_id=trace_id,
            )
            finished = await handler_result(handle, DURABLE_WAIT_SECONDS)
            if finished is None:
                raise HandlerTimedOut(f"{handle.id} did not finish within {DURABLE_WAIT_SECONDS:.0f}s")
            result = definition.response_model.model_validate(finished.response)
        else:
            result = await run_inline(self._resources, self.name, definition, model, trace_id, self.log)
        if returns is not None and not isinstance(result, returns):
            raise TypeError(f"{handler!r} answered {type(result).__name__}, not {returns.__name__}")
        return result

    async def set_secrets(self, values: Mapping[str, str] | None = None, /, **named: str) -> None:
        """Set secrets by name (`""` unsets one): `await env.set_secrets(KEYCRM_API_KEY="")`."""
        await self._resources.creds(self.name).set_many({**(values or {}), **named})

    async def secret(self, name: str) -> str | None:
        """A secret's value as stored; None when it is unset."""
        return await self._resources.creds(self.name).reveal(name)

    async def set_config(self, key: str, value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
        """Store a config value as `PUT /{integration}/config/{key}` does (a partial value is
        completed from the default model); returns what was stored."""
        return await self._resources.config(self.name).set(key, value)

    async def config(self, key: str) -> dict[str, Any] | None:
        """A config value as stored; None when there is none."""
        return await self._resources.config(self.name).get_raw(key)

    async def reset(self) -> None:
        """Every config back to its default, every secret back to what `start` gave it, the log
        emptied: for an autouse fixture. The simulated peers' data is the test's to put back."""
        config = self._resources.config(self.name)
        for key, default in self.integration.default_configs.items():
            await config.set(key, default)
        await self.set_secrets(self._start_secrets)
        self.log.clear()
