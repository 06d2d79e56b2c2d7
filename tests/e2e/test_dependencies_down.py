"""PostgreSQL or Temporal unreachable: 503 naming which, never a bare 500, and nothing lost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.fernet import Fernet

from api.app import create_app
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.gw_integration import gw


@pytest.fixture
async def broken(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose PostgreSQL and Temporal addresses point at closed ports."""
    settings = Settings(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/happ",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        HAPP_ADMIN_TOKEN=ADMIN_TOKEN,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    app = create_app(settings, {**discover_integrations(["example"]), "gw": gw}, sink=CaptureSink())
    await app.state.runtime.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as client:
        yield client
    await app.state.runtime.stop()


async def test_health_names_both_dependencies(broken: httpx.AsyncClient) -> None:
    # The public /health is the process's liveness; the dependencies are the admin's report.
    assert (await broken.get("/health")).status_code == 200
    resp = await broken.get("/health", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status_code == 503
    checks = resp.json()["checks"]
    assert checks["postgres"]["ok"] is False and checks["temporal"]["ok"] is False


async def test_inline_handler_needing_the_database_is_503_postgresql(broken: httpx.AsyncClient) -> None:
    resp = await broken.post(
        "/example/webhook/agent-init",
        json={"phone": "+380", "conversationId": "c"},
        headers={"Authorization": "Bearer some-token"},
    )
    # The route's token is checked against the stored secret: the database answer is what fails.
    assert resp.status_code == 503, resp.text
    assert resp.json() == {**resp.json(), "success": False, "dependency": "PostgreSQL"}


async def test_durable_start_is_503_temporal(broken: httpx.AsyncClient) -> None:
    # A public durable route (no secret to read first): Temporal's answer is what fails.
    resp = await broken.post("/gw/aliased", json={"recordId": "r"})
    assert resp.status_code == 503
    assert resp.json()["dependency"] == "Temporal" and resp.headers["retry-after"]


async def test_admin_route_is_503_postgresql(broken: httpx.AsyncClient) -> None:
    resp = await broken.get("/example/secrets", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert resp.status_code == 503 and resp.json()["dependency"] == "PostgreSQL"


async def test_the_console_says_the_database_is_down_with_a_page_and_retry_after(
    broken: httpx.AsyncClient,
) -> None:
    """A browser with a session cookie, the database out of reach: a 503 page saying so (never a
    bare 500, never a sign-in loop), worth reloading in a few seconds."""
    resp = await broken.get("/console/today", headers={"Cookie": f"happ_console_session={'s' * 43}"})
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5" and resp.headers["content-type"].startswith("text/html")
    assert "PostgreSQL" in resp.text
    signing_in = await broken.post("/console/login", data={"token": ADMIN_TOKEN})
    assert signing_in.status_code == 503 and signing_in.headers["Retry-After"] == "5"
