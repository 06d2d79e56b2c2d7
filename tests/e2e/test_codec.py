"""Payload encryption: history at rest is unreadable; the gateway's codec decodes it for an operator."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

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
from tests.e2e.conftest import ADMIN_TOKEN, Stack
from worker import workflow_runner

PAYLOAD_KEY = Fernet.generate_key().decode()
PRIVATE = "+380-private-" + uuid.uuid4().hex[:8]


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


@pytest.fixture
async def codec_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    settings = stack.settings.model_copy(update={"payload_key": SecretStr(PAYLOAD_KEY)})
    app = create_app(settings, stack.runtime.integrations, sink=CaptureSink())
    await app.state.runtime.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client
    await app.state.runtime.stop()


async def test_history_is_encrypted_and_the_codec_decodes_it(
    temporal_dev: EmbeddedTemporal, stack: Stack, codec_api: httpx.AsyncClient, task_queue: str
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
    raw_json = json.loads(raw.to_json())
    payload = raw_json["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert PRIVATE.encode() not in base64.b64decode(payload["data"])

    body = {"payloads": [payload]}
    assert (await codec_api.post("/codec/decode", json=body)).status_code == 401
    decoded = await codec_api.post(
        "/codec/decode", json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert decoded.status_code == 200, decoded.text
    plain = decoded.json()["payloads"][0]
    assert json.loads(base64.b64decode(plain["data"])) == PRIVATE


async def test_the_web_ui_signs_in_with_a_cookie_and_may_call_cross_origin(
    codec_api: httpx.AsyncClient,
) -> None:
    preflight = await codec_api.options(
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
    assert (await codec_api.post("/codec/login", data={"token": "wrong"})).status_code == 401
    signed_in = await codec_api.post("/codec/login", data={"token": ADMIN_TOKEN})
    assert signed_in.status_code == 200 and ADMIN_TOKEN not in signed_in.headers["set-cookie"]
    encoded = await codec_api.post(
        "/codec/encode",
        json={
            "payloads": [
                {
                    "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                    "data": base64.b64encode(b'"hi"').decode(),
                }
            ]
        },
    )
    assert encoded.status_code == 200, "the cookie alone is enough"
    roundtrip = await codec_api.post("/codec/decode", json=encoded.json())
    assert base64.b64decode(roundtrip.json()["payloads"][0]["data"]) == b'"hi"'


async def test_codec_is_404_while_encryption_is_off(stack: Stack) -> None:
    resp = await stack.http.post("/codec/decode", json={"payloads": []}, headers=stack.admin)
    assert resp.status_code == 404 and "HAPP_PAYLOAD_KEY" in resp.json()["error"]
