"""Every route of every integration against every kind of wrong credential: no credentials, a
wrong token, another integration's WEBHOOK_TOKEN, the admin token where a webhook token is due
and the reverse, a signature under another integration's secret. Only the right credential gets
past authentication, and a refused request had none of its body read. The routes without a
security scheme in their OpenAPI document are the public ones: health (liveness only), the docs,
and the handler routes whose author wrote `auth="none"`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from happ_integ.integration import discover_integrations, route_of
from happ_integ.keys import generate_key
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from simulator import sign_elevenlabs
from tests.e2e.gw_integration import gw

ADMIN = "matrix-admin-" + uuid.uuid4().hex
# Public by design: health, which tells anyone only that the process is up.
PUBLIC = {("GET", "/health")}
# agent-init answers a caller without the sender token 200 with these and nothing else: the
# agent still speaks, and learns nothing of the CRM.
AGENT_INIT = "/webhook/agent-init"
DATE_ONLY = {"today_is", "time", "weekday"}
ONE_MIB = 1024 * 1024


@dataclass
class Matrix:
    http: httpx.AsyncClient
    hook: dict[str, str]  # integration → its WEBHOOK_TOKEN
    signing: dict[str, str]  # integration → its ELEVENLABS_WEBHOOK_SECRET
    documents: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
async def matrix(pg_url: str) -> AsyncIterator[Matrix]:
    database = f"auth_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    integrations = {**discover_integrations(dev=True), "gw": gw}
    settings = Settings(
        DATABASE_URL=pg_url.rsplit("/", 1)[0] + f"/{database}",
        HAPP_SECRET_KEY=generate_key(),
        HAPP_ADMIN_TOKEN=ADMIN,
    )
    app = create_app(settings, integrations, sink=lambda event: None)
    hook = {name: f"hook-{name}-{uuid.uuid4().hex}" for name in integrations}
    signing = {name: f"wsec-{name}-{uuid.uuid4().hex}" for name in integrations}
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        for name, integration in integrations.items():
            await prepare_integration(runtime.resources, integration)
            await runtime.resources.creds(name).set_many(
                {"WEBHOOK_TOKEN": hook[name], "ELEVENLABS_WEBHOOK_SECRET": signing[name]}
            )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as http:
            documents = {name: (await http.get(f"/{name}/openapi.json")).json() for name in integrations}
            yield Matrix(http, hook, signing, documents)


def routes(matrix: Matrix) -> list[tuple[str, str, str, str | None]]:
    """(integration, method, path, security scheme or None) for every operation of every document."""
    found = []
    for name, document in matrix.documents.items():
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                schemes = [key for requirement in operation.get("security", []) for key in requirement]
                found.append((name, method.upper(), path, schemes[0] if schemes else None))
    return found


def declared_public(name: str) -> set[tuple[str, str]]:
    """The handler routes an integration's author declared without `auth`, and the docs pages."""
    integration = {**discover_integrations(dev=True), "gw": gw}[name]
    routes = {tuple(route_of(d).split(" ", 1)) for d in integration.routed_handlers() if d.auth is None}
    return {(m, p) for m, p in routes} | {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc")}


def concrete(path: str) -> str:
    return path.replace("{key}", "call_handling").replace("{call_id}", "c_nosuchcall")


def other(name: str, matrix: Matrix) -> str:
    return next(n for n in matrix.hook if n != name)


async def send(matrix: Matrix, method: str, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", **headers}
    content = body if method in ("POST", "PUT", "PATCH") else None
    return await matrix.http.request(method, url, headers=headers, content=content)


def refused(url: str, resp: httpx.Response) -> bool:
    """401, or for agent-init its date-and-time-only answer."""
    if url.endswith(AGENT_INIT) and resp.status_code == 200:
        return set(resp.json()["dynamic_variables"]) == DATE_ONLY
    return resp.status_code == 401


class CountedBody:
    """A 1 MiB JSON body sent in chunks, counting the chunks the server asked for."""

    def __init__(self) -> None:
        self.chunks_read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b" " * (64 * 1024)
        for _ in range(ONE_MIB // len(chunk) - 1):
            self.chunks_read += 1
            yield chunk
        self.chunks_read += 1
        yield b"{}" + chunk[2:]


def signed(secret: str, body: bytes, ts: int | None = None) -> dict[str, str]:
    return {"ElevenLabs-Signature": sign_elevenlabs(secret, body, ts or int(time.time()))}


async def test_every_route_refuses_every_wrong_credential(matrix: Matrix) -> None:
    body = json.dumps({}).encode()
    checked, problems = 0, []
    for name, method, path, scheme in routes(matrix):
        url = f"/{name}{concrete(path)}"
        if scheme is None:
            if (method, path) not in PUBLIC | declared_public(name):
                problems.append(f"{method} {url} has no security scheme and is not known to be public")
            continue
        bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
        wrong: dict[str, dict[str, str]] = {
            "no credentials": {},
            "a wrong token": bearer("not-the-token"),
            "another integration's WEBHOOK_TOKEN": bearer(matrix.hook[other(name, matrix)]),
        }
        if scheme == "AdminToken":
            wrong["its own WEBHOOK_TOKEN where the admin token is due"] = bearer(matrix.hook[name])
            right = bearer(ADMIN)
        elif scheme in ("WebhookToken", "SenderToken"):
            # The sender token is SENDER_TOKEN, else WEBHOOK_TOKEN: unset here, so WEBHOOK_TOKEN.
            wrong["the admin token where WEBHOOK_TOKEN is due"] = bearer(ADMIN)
            right = bearer(matrix.hook[name])
        elif scheme == "ElevenLabsSignature":
            wrong |= {
                "the admin token where a signature is due": bearer(ADMIN),
                "a signature under another integration's secret": signed(
                    matrix.signing[other(name, matrix)], body
                ),
                "a stale signature": signed(matrix.signing[name], body, int(time.time()) - 3600),
            }
            right = signed(matrix.signing[name], body)
        else:
            raise AssertionError(f"unknown scheme {scheme}")
        for why, headers in wrong.items():
            resp = await send(matrix, method, url, headers, body)
            if not refused(url, resp):
                problems.append(f"{method} {url} with {why}: {resp.status_code}, not refused")
        status = (await send(matrix, method, url, right, body)).status_code
        if status in (401, 403):
            problems.append(f"{method} {url} with the right credentials: {status}")
        if (
            method in ("POST", "PUT", "PATCH")
            and scheme != "ElevenLabsSignature"
            and not url.endswith(AGENT_INIT)
        ):
            # A signature is over the body, so that check reads it; agent-init answers everyone.
            counted = CountedBody()
            resp = await matrix.http.request(
                method, url, headers={"Content-Type": "application/json", **bearer("wrong")}, content=counted
            )
            if resp.status_code != 401 or counted.chunks_read:
                problems.append(
                    f"{method} {url} with a wrong token and 1 MiB: {resp.status_code} after reading "
                    f"{counted.chunks_read} of {ONE_MIB // (64 * 1024)} chunks of the body"
                )
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 25  # every integration's admin, webhook and signed routes were in the matrix


async def test_the_call_flows_own_handlers_have_no_route(matrix: Matrix) -> None:
    for name in ("sofa", "keycrm"):
        for handler in ("crm-lookup", "crm-postcall"):
            assert f"/webhook/{handler}" not in matrix.documents[name]["paths"]
            resp = await matrix.http.post(f"/{name}/webhook/{handler}", json={})
            assert resp.status_code == 404, resp.text


def test_no_shipped_integration_has_a_public_handler_route() -> None:
    """Secure by default: the integrations in the repository (the example included) say nothing
    about auth or ask for it; only the test integration `gw` declares public routes."""
    for name, integration in discover_integrations(dev=True).items():
        public = [route_of(d) for d in integration.routed_handlers() if d.auth is None]
        assert public == [], f"{name} serves {public} without authentication"
