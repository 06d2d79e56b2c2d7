"""Every route of every integration against every kind of wrong credential: no credentials, a
wrong token, another integration's WEBHOOK_TOKEN, the admin token where a webhook token is due
and the reverse, a signature under another integration's secret. Only the right credential gets
past authentication; the routes without a security scheme in their OpenAPI document are the
public ones (health, docs, the voice assistant's and the agent's unsigned webhooks)."""

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
from happ_integ.settings import Settings
from happ_integ.setup import prepare_integration
from simulator import sign_elevenlabs
from tests.e2e.gw_integration import gw

ADMIN = "matrix-admin-" + uuid.uuid4().hex
# Public by design: health, and two webhooks whose senders cannot be given credentials of ours.
PUBLIC = {
    ("GET", "/health"),
    ("POST", "/webhook/agent-init"),  # the agent asks it before it speaks; it answers CRM variables only
    ("POST", "/webhook/call-events"),  # the voice assistant's events; they change only calls it knows
}


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
    integrations = {**discover_integrations(), "gw": gw}
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
    integration = {**discover_integrations(), "gw": gw}[name]
    routes = {tuple(route_of(d).split(" ", 1)) for d in integration.routed_handlers() if d.auth is None}
    return {(m, p) for m, p in routes} | {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc")}


def concrete(path: str) -> str:
    return path.replace("{key}", "call_handling").replace("{call_id}", "c_nosuchcall")


def other(name: str, matrix: Matrix) -> str:
    return next(n for n in matrix.hook if n != name)


async def send(matrix: Matrix, method: str, url: str, headers: dict[str, str], body: bytes) -> int:
    headers = {"Content-Type": "application/json", **headers}
    content = body if method in ("POST", "PUT", "PATCH") else None
    return (await matrix.http.request(method, url, headers=headers, content=content)).status_code


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
        elif scheme == "WebhookToken":
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
            status = await send(matrix, method, url, headers, body)
            if status != 401:
                problems.append(f"{method} {url} with {why}: {status}, not 401")
        status = await send(matrix, method, url, right, body)
        if status in (401, 403):
            problems.append(f"{method} {url} with the right credentials: {status}")
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 25  # every integration's admin, webhook and signed routes were in the matrix


async def test_the_call_flows_own_handlers_have_no_route(matrix: Matrix) -> None:
    for name in ("sofa", "keycrm"):
        for handler in ("crm-lookup", "crm-postcall"):
            assert f"/webhook/{handler}" not in matrix.documents[name]["paths"]
            resp = await matrix.http.post(f"/{name}/webhook/{handler}", json={})
            assert resp.status_code == 404, resp.text
