"""`happ_integ.testing.IntegrationTestEnv`: one handler source, the same answers and errors inline
and durably; config, secrets and tokens as a test sets them; nothing left on the server after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from happ_integ import NotFound
from happ_integ.testing import IntegrationTestEnv
from tests.testing.greeter import Answer, integration


@pytest.fixture(scope="module", params=["inline", "durable"])
async def started(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[IntegrationTestEnv]:
    durable = request.param == "durable"
    async with IntegrationTestEnv.start(integration, database_url=pg_url, durable=durable) as env:
        yield env


@pytest.fixture
async def env(started: IntegrationTestEnv) -> IntegrationTestEnv:
    await started.reset()
    return started


async def test_a_run_answers_in_the_env_s_mode(env: IntegrationTestEnv) -> None:
    answer = await env.run("greet", {"name": "Olena"}, Answer)
    mode = "durable" if env.durable else "inline"
    assert answer == Answer(text="Hello, Olena", token_set=True, mode=mode)
    assert env.log.named("handler:start")


async def test_a_failed_run_raises_the_handler_s_error(env: IntegrationTestEnv) -> None:
    with pytest.raises(NotFound, match="no such person"):
        await env.run("greet", {"name": "nobody"})


async def test_config_and_secrets_are_set_read_and_reset(env: IntegrationTestEnv) -> None:
    assert await env.set_config("greeting", {"text": "Вітаю"}) == {"text": "Вітаю"}
    assert await env.config("greeting") == {"text": "Вітаю"}
    await env.set_secrets(WEBHOOK_TOKEN="")
    assert await env.secret("WEBHOOK_TOKEN") is None
    assert await env.run("greet", {"name": "Olena"}, Answer) == Answer(
        text="Вітаю, Olena", token_set=False, mode="durable" if env.durable else "inline"
    )
    await env.reset()
    assert await env.config("greeting") == {"text": "Hello"}
    assert await env.secret("WEBHOOK_TOKEN") == env.webhook_token
    assert len(env.log) == 0


async def test_the_route_takes_the_webhook_token(env: IntegrationTestEnv) -> None:
    assert (await env.http.post("/webhook/greet", json={"name": "Olena"})).status_code == 401
    answer = await env.http.post("/webhook/greet", json={"name": "Olena"}, headers=env.headers)
    # A durable route needs Temporal: an inline env has none.
    assert answer.status_code == (200 if env.durable else 503), answer.text
    if env.durable:
        assert answer.json()["text"] == "Hello, Olena"
    secrets = await env.http.get("/secrets", headers=env.admin_headers)
    assert secrets.status_code == 200, secrets.text


async def test_run_checks_the_answer_s_type_and_the_mode(env: IntegrationTestEnv) -> None:
    with pytest.raises(TypeError, match="answered Answer, not IntegrationTestEnv"):
        await env.run("greet", {"name": "Olena"}, IntegrationTestEnv)  # type: ignore[type-var]
    if not env.durable:
        with pytest.raises(RuntimeError, match="durable=True"):
            await env.run("greet", {"name": "Olena"}, durable=True)


async def test_the_env_s_database_is_dropped_at_the_end(pg_url: str) -> None:
    async with IntegrationTestEnv.start(integration, database_url=pg_url) as env:
        database = env.settings.database_url
        assert database is not None and database != pg_url
        name = database.rsplit("/", 1)[1]
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await conn.close()


async def test_without_a_database_url_the_env_starts_a_postgres_of_its_own(pg_url: str) -> None:
    async with IntegrationTestEnv.start(integration) as env:
        database = env.settings.database_url
        assert database is not None and database.split("/")[2] != pg_url.split("/")[2]
        assert await env.run("greet", {"name": "Olena"}, Answer) == Answer(
            text="Hello, Olena", token_set=True, mode="inline"
        )
