"""Payload encryption and the codec the Web UI decodes through, over real HTTP: history at rest is
unreadable; an operator signs in with the admin token and gets a random, expiring session that any
replica accepts and logout ends; wrong tokens are throttled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.worker import Worker

from api.app import create_app
from happ_integ.embedded import EmbeddedTemporal
from happ_integ.logs import CaptureSink
from happ_integ.temporal import connect_client
from simulator.calls import Play
from tests.e2e.call_stack import phone, start_call_stack
from tests.e2e.conftest import ADMIN_TOKEN, Stack, serve
from tests.e2e.history_text import history_text
from worker import workflow_runner

PAYLOAD_KEY = Fernet.generate_key().decode()
PRIVATE = "+380-private-" + uuid.uuid4().hex[:8]
PLAIN = {
    "payloads": [
        {
            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(b'"hi"').decode(),
        }
    ]
}


@activity.defn(name="codec.echo")
async def echo(value: str) -> str:
    return value


@workflow.defn(name="CodecEcho", sandboxed=False)  # test plumbing: this module imports FastAPI
class CodecEcho:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            "codec.echo", value, start_to_close_timeout=timedelta(seconds=10)
        )


@dataclass
class Replicas:
    """Two API processes' worth of gateways (one database), each over real HTTP on loopback."""

    a: httpx.AsyncClient
    b: httpx.AsyncClient


@pytest.fixture
async def replicas(stack: Stack) -> AsyncIterator[Replicas]:
    settings = stack.settings.model_copy(update={"payload_key": SecretStr(PAYLOAD_KEY)})
    await stack.resources.pool.execute("DELETE FROM happ_auth_failures")  # no other test's guesses
    servers = []
    clients = []
    for _ in range(2):
        app = create_app(settings, stack.runtime.integrations, sink=CaptureSink())
        server, task = await serve(app, free := _free_port(), lifespan="on")
        servers.append((server, task))
        clients.append(httpx.AsyncClient(base_url=f"http://127.0.0.1:{free}", timeout=30))
    yield Replicas(*clients)
    for client in clients:
        await client.aclose()
    for server, task in servers:
        server.should_exit = True
        await task
    await stack.resources.pool.execute("DELETE FROM happ_auth_failures")


def _free_port() -> int:
    from happ_integ.embedded.process import free_port

    return free_port()


def session_cookie(response: httpx.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


async def sign_in(client: httpx.AsyncClient, token: str = ADMIN_TOKEN, **headers: str) -> httpx.Response:
    response = await client.post("/codec/login", data={"token": token}, headers=headers)
    client.cookies.clear()  # each test says which cookie it sends, as a browser of its own would
    return response


def sends(response: httpx.Response) -> dict[str, str]:
    """The Cookie header a browser sends after `response` signed it in."""
    return {"Cookie": f"happ_codec_session={session_cookie(response)['happ_codec_session'].value}"}


async def test_history_is_encrypted_and_the_codec_decodes_it(
    temporal_dev: EmbeddedTemporal, stack: Stack, replicas: Replicas, task_queue: str
) -> None:
    encrypted = await connect_client(temporal_dev.address, payload_key=PAYLOAD_KEY)
    async with Worker(
        encrypted,
        task_queue=task_queue,
        workflows=[CodecEcho],
        activities=[echo],
        workflow_runner=workflow_runner(),
    ):
        workflow_id = f"codec-{uuid.uuid4().hex}"
        assert (
            await encrypted.execute_workflow("CodecEcho", PRIVATE, id=workflow_id, task_queue=task_queue)
            == PRIVATE
        )
    raw = await stack.temporal.get_workflow_handle(workflow_id).fetch_history()  # a client without the key
    assert PRIVATE not in history_text(raw, decrypt=False)
    raw_json = json.loads(raw.to_json())
    payload = raw_json["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"

    body = {"payloads": [payload]}
    assert (await replicas.a.post("/codec/decode", json=body)).status_code == 401
    decoded = await replicas.a.post(
        "/codec/decode", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert decoded.status_code == 200, decoded.text
    plain = decoded.json()["payloads"][0]
    assert json.loads(base64.b64decode(plain["data"])) == PRIVATE


async def test_sign_in_opens_a_random_expiring_session_with_a_locked_down_cookie(
    replicas: Replicas,
) -> None:
    first, second = await sign_in(replicas.a), await sign_in(replicas.a)
    assert first.status_code == second.status_code == 200, first.text
    one, two = session_cookie(first)["happ_codec_session"], session_cookie(second)["happ_codec_session"]
    assert one.value != two.value, "every sign-in is a new random session"
    legacy = hmac.new(ADMIN_TOKEN.encode(), b"happ-codec-session", hashlib.sha256).hexdigest()
    assert ADMIN_TOKEN not in one.value and one.value != legacy
    assert len(one.value) >= 43, "256 random bits"
    assert one["httponly"] and one["samesite"] == "strict" and one["path"] == "/codec"
    assert one["max-age"] == str(12 * 3600), "the session expires"
    assert not one["secure"], "plain http on loopback (happ dev): a Secure cookie would be dropped"
    served_as = await sign_in(replicas.a, Host="codec.example.com")
    assert session_cookie(served_as)["happ_codec_session"]["secure"], "any other host: Secure"
    assert "https" in served_as.json()["message"], "and the operator is told why http will not keep it"


async def test_every_replica_accepts_a_session_and_logout_ends_it_everywhere(
    replicas: Replicas, stack: Stack
) -> None:
    cookie = sends(await sign_in(replicas.a))
    on_b = await replicas.b.post("/codec/encode", json=PLAIN, headers=cookie)
    assert on_b.status_code == 200, "the session lives in PostgreSQL, not in one replica's memory"
    roundtrip = await replicas.a.post("/codec/decode", json=on_b.json(), headers=cookie)
    assert base64.b64decode(roundtrip.json()["payloads"][0]["data"]) == b'"hi"'

    out = await replicas.b.post("/codec/logout", headers=cookie)
    assert out.status_code == 200 and out.json()["message"] == "signed out"
    assert 'happ_codec_session=""' in out.headers["set-cookie"], "the browser drops the cookie"
    refused = await replicas.a.post("/codec/decode", json=PLAIN, headers=cookie)
    assert refused.status_code == 401 and "/codec/login" in refused.json()["error"]

    # A session past its expiry opens nothing either (its end moved back rather than waited for).
    signed_in = await sign_in(replicas.b)
    again = sends(signed_in)
    assert (await replicas.a.post("/codec/encode", json=PLAIN, headers=again)).status_code == 200
    session_id = session_cookie(signed_in)["happ_codec_session"].value
    await stack.resources.pool.execute(
        "UPDATE happ_sessions SET expires_at = now() - interval '1 second' WHERE digest = $1",
        hashlib.sha256(session_id.encode()).digest(),
    )
    assert (await replicas.a.post("/codec/encode", json=PLAIN, headers=again)).status_code == 401


async def test_wrong_admin_tokens_are_throttled_per_address_and_overall(replicas: Replicas) -> None:
    guesser = {"X-Forwarded-For": "198.51.100.7"}  # uvicorn trusts loopback's forwarded address
    for _ in range(10):
        assert (await sign_in(replicas.a, "wrong-" + "x" * 32, **guesser)).status_code == 401
    blocked = await sign_in(replicas.b, ADMIN_TOKEN, **guesser)
    assert blocked.status_code == 429, "blocked on every replica, even with the right token"
    assert 1 <= int(blocked.headers["retry-after"]) <= 600
    bearer = {**guesser, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (await replicas.a.post("/codec/decode", json=PLAIN, headers=bearer)).status_code == 429
    # Another address still signs in; guesses spread over many addresses hit the overall limit.
    assert (await sign_in(replicas.a, **{"X-Forwarded-For": "198.51.100.8"})).status_code == 200
    for n in range(90):
        spread = {"X-Forwarded-For": f"203.0.113.{n}"}
        assert (await sign_in(replicas.b, "wrong-" + "y" * 32, **spread)).status_code == 401
    assert (await sign_in(replicas.a, **{"X-Forwarded-For": "192.0.2.1"})).status_code == 429


async def test_the_web_ui_may_call_cross_origin_with_its_cookie(replicas: Replicas) -> None:
    preflight = await replicas.a.options(
        "/codec/decode",
        headers={
            "Origin": "http://127.0.0.1:8233",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert (await replicas.a.post("/codec/login", data={"token": "wrong"})).status_code == 401
    signed_in = await sign_in(replicas.a)
    assert signed_in.status_code == 200 and ADMIN_TOKEN not in signed_in.headers["set-cookie"]
    encoded = await replicas.a.post(
        "/codec/encode", json=PLAIN, headers={**sends(signed_in), "Origin": "http://127.0.0.1:8233"}
    )
    assert encoded.status_code == 200, "the cookie alone is enough"
    assert encoded.headers["access-control-allow-credentials"] == "true"


async def test_codec_is_404_while_encryption_is_off(stack: Stack) -> None:
    resp = await stack.http.post("/codec/decode", json={"payloads": []}, headers=stack.admin)
    assert resp.status_code == 404 and "HAPP_PAYLOAD_KEY" in resp.json()["error"]


@pytest.mark.timeout(240)
async def test_a_whole_call_leaves_no_number_readable_in_history(pg_url: str, tmp_path: Path) -> None:
    """Production's shape (`happ worker` processes, the gateway, HAPP_PAYLOAD_KEY set as `happ api`
    and `happ worker` require): the call and its CRM runs are in history only encrypted."""
    stack = await start_call_stack(pg_url, tmp_path / "logs", Play.answered(40, talk_seconds=0.2))
    try:
        stack.start_worker()
        number = phone(905)
        stack.add_leads([number])
        [call_id] = await stack.originate([number])
        await stack.until_all([call_id], {"completed"}, seconds=120)
        bare = await connect_client(stack.temporal.address)  # what anyone with the server's data reads
        ids = [
            f"sofa:call:{call_id}",
            f"sofa:handler:crm-lookup:{call_id}",
            f"sofa:handler:crm-postcall:{call_id}",
        ]
        for workflow_id in ids:
            history = await bare.get_workflow_handle(workflow_id).fetch_history()
            at_rest = history_text(history, decrypt=False)
            for shown in (number, number[1:], "0" + number[4:]):
                assert shown not in at_rest, f"{shown} readable in {workflow_id}"
            assert f"Лід {number[-4:]}" not in at_rest, "nor the CRM's lead name"
            assert number in history_text(history), "the same history, decrypted, has it: the right text"
    finally:
        await stack.close()
