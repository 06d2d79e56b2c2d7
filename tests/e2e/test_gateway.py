"""The gateway through HTTP: what a caller sees for good and bad requests."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from api.app import create_app
from happ_integ.logs import CaptureSink
from simulator import sign_elevenlabs
from tests.e2e.conftest import ADMIN_TOKEN, GW_ELEVENLABS_SECRET, GW_WEBHOOK_TOKEN, Stack


async def runs_of(stack: Stack, key: str) -> int:
    return int(await stack.resources.pool.fetchval("SELECT count(*) FROM gw_runs WHERE key = $1", key))


async def test_invalid_payload_is_422_with_the_field_path(stack: Stack) -> None:
    resp = await stack.http.post("/gw/order", json={"customer": "Ann", "items": [{"name": "tea", "qty": 0}]})
    assert resp.status_code == 422
    body = resp.json()
    assert body["success"] is False
    assert body["detail"][0]["field"] == "items.0.qty"
    assert "items.0.qty" in body["error"]


async def test_malformed_json_is_422(stack: Stack) -> None:
    resp = await stack.http.post(
        "/gw/order", content=b'{"customer": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["success"] is False


async def test_get_handler_takes_its_payload_from_the_query(stack: Stack) -> None:
    resp = await stack.http.get("/gw/lookup", params={"text": "hi", "count": 4})
    assert resp.status_code == 200 and resp.json() == {"success": True, "text": "hi", "runs": 4}
    assert (await stack.http.get("/gw/lookup", params={"count": "x", "text": "a"})).status_code == 422


async def test_unknown_integration_route_and_method(stack: Stack) -> None:
    assert (await stack.http.post("/nosuch/webhook/agent-init", json={})).status_code == 404
    missing = await stack.http.post("/gw/nosuch", json={})
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert (await stack.http.get("/gw/order")).status_code == 405


async def test_body_over_one_mib_is_413(stack: Stack) -> None:
    resp = await stack.http.post(
        "/gw/order",
        content=b'{"customer":"' + b"x" * (1024 * 1024 + 10) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and resp.json()["success"] is False


async def test_inline_handler_error_answers_success_false_and_is_logged(stack: Stack) -> None:
    resp = await stack.http.post("/gw/boom", json={"text": "inline"})
    assert resp.status_code == 500
    assert resp.json()["success"] is False and "kaboom: inline" in resp.json()["error"]
    assert "Traceback" not in resp.text
    ends = [e for e in stack.capture.named("handler:end") if e.handler == "boom"]
    assert ends and "kaboom: inline" in (ends[-1].error or "")


async def test_durable_handler_error_fails_the_run_and_answers_success_false(stack: Stack) -> None:
    key = uuid.uuid4().hex
    resp = await stack.http.post("/gw/boom-durable", json={"id": key, "text": "durable"})
    assert resp.status_code == 500
    assert resp.json()["success"] is False and "kaboom: durable" in resp.json()["error"]
    workflow_id = resp.headers["x-workflow-id"]
    description = await stack.temporal.get_workflow_handle(workflow_id).describe()
    assert description.status is not None and description.status.name == "FAILED"


async def test_admin_routes_need_the_admin_token(stack: Stack) -> None:
    routes = [
        ("GET", "/gw/secrets", None),
        ("PUT", "/gw/secrets", {"WEBHOOK_TOKEN": "x"}),
        ("POST", "/gw/setup", None),
        ("POST", "/gw/cron/trigger", None),
        ("GET", "/example/config/call_handling", None),
        ("PUT", "/example/config/call_handling", {"concurrency_limit": 99}),
    ]
    for method, path, body in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
            resp = await stack.http.request(method, path, json=body, headers=headers)
            assert resp.status_code == 401, (method, path, headers, resp.text)
    assert (await stack.http.get("/example/config/call_handling", headers=stack.admin)).json()["value"][
        "concurrency_limit"
    ] == 3, "the refused PUT changed nothing"
    ok = await stack.http.get("/gw/secrets", headers=stack.admin)
    assert ok.status_code == 200
    assert ok.json() == {"secrets": {"ELEVENLABS_WEBHOOK_SECRET": True, "WEBHOOK_TOKEN": True}}
    assert GW_WEBHOOK_TOKEN not in ok.text


async def test_config_routes_validate_against_the_default_model(stack: Stack) -> None:
    default = await stack.http.get("/example/config/call_handling", headers=stack.admin)
    assert default.status_code == 200 and default.json()["value"]["concurrency_limit"] == 3
    bad = await stack.http.put(
        "/example/config/call_handling", json={"concurrency_limit": "many"}, headers=stack.admin
    )
    assert bad.status_code == 422
    try:
        good = await stack.http.put(
            "/example/config/call_handling", json={"concurrency_limit": 5}, headers=stack.admin
        )
        assert good.status_code == 200 and good.json()["value"]["concurrency_limit"] == 5
        assert good.json()["value"]["short_call_seconds"] == 5
    finally:
        await stack.http.put(
            "/example/config/call_handling", json={"concurrency_limit": 3}, headers=stack.admin
        )
    assert (await stack.http.get("/example/config/nosuch", headers=stack.admin)).status_code == 404


async def test_rate_limit_is_shared_by_replicas_and_answers_429(stack: Stack) -> None:
    """Two gateways (two replicas) on one database share the handler's 3-per-hour budget."""
    await stack.resources.pool.execute("DELETE FROM happ_rate_limits WHERE integration = 'gw'")
    replica = create_app(stack.settings, stack.runtime.integrations, sink=CaptureSink())
    await replica.state.runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=replica), base_url="http://r2"
        ) as other:
            codes = [
                (await client.post("/gw/echo", json={"text": "a"})).status_code
                for client in (stack.http, other, stack.http)
            ]
            limited = await other.post("/gw/echo", json={"text": "a"})
    finally:
        await replica.state.runtime.stop()
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 3600
    assert limited.json()["success"] is False


async def test_dedup_inline_answers_the_first_response_and_runs_once(stack: Stack) -> None:
    key = uuid.uuid4().hex
    first = await stack.http.post("/gw/once-inline", json={"id": key, "text": "one"})
    again = await stack.http.post("/gw/once-inline", json={"id": key, "text": "two"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"success": True, "text": "one", "runs": 1}
    assert again.headers["x-happ-dedup"] == "hit"
    assert await runs_of(stack, key) == 1


async def test_dedup_durable_runs_once_within_the_ttl_and_again_after(stack: Stack) -> None:
    key = uuid.uuid4().hex
    first = await stack.http.post("/gw/once-durable", json={"id": key, "text": "one"})
    assert first.status_code == 200, first.text
    assert first.headers["x-workflow-id"] == f"gw:handler:once-durable:{key}"
    again = await stack.http.post("/gw/once-durable", json={"id": key, "text": "two"})
    assert again.json() == first.json() == {"success": True, "text": "one", "runs": 1}
    assert again.headers["x-happ-dedup"] == "hit", "answered from the dedup store, not by a second start"
    assert await runs_of(stack, key) == 1
    # The TTL has passed (its row expired): the same key is a new event and runs again.
    await stack.resources.pool.execute(
        "UPDATE happ_dedup SET expires_at = now() - interval '1 second' WHERE key = $1", key
    )
    later = await stack.http.post("/gw/once-durable", json={"id": key, "text": "three"})
    assert later.status_code == 200 and later.json() == {"success": True, "text": "three", "runs": 2}


async def test_idempotency_key_without_dedup_returns_the_finished_run(stack: Stack) -> None:
    key = uuid.uuid4().hex
    body = {"phone": "+380", "product_id": "idem"}
    first = await stack.http.post(
        "/example/webhook/create-order", json=body, headers={"Idempotency-Key": key}
    )
    again = await stack.http.post(
        "/example/webhook/create-order", json=body, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert (
        await stack.resources.pool.fetchval(
            "SELECT count(*) FROM example_orders WHERE id = $1", first.json()["orderId"]
        )
        == 1
    )


async def test_bearer_auth(stack: Stack) -> None:
    assert (await stack.http.post("/gw/secure", json={"text": "a"})).status_code == 401
    wrong = await stack.http.post("/gw/secure", json={"text": "a"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = await stack.http.post(
        "/gw/secure", json={"text": "a"}, headers={"Authorization": f"Bearer {GW_WEBHOOK_TOKEN}"}
    )
    assert ok.status_code == 200


async def test_elevenlabs_signature(stack: Stack) -> None:
    body = json.dumps({"text": "signed"}).encode()
    now = int(time.time())
    good = {
        "ElevenLabs-Signature": sign_elevenlabs(GW_ELEVENLABS_SECRET, body, now),
        "Content-Type": "application/json",
    }
    assert (await stack.http.post("/gw/signed", content=body, headers=good)).status_code == 200
    tampered = await stack.http.post("/gw/signed", content=body.replace(b"signed", b"forged"), headers=good)
    assert tampered.status_code == 401
    stale = {**good, "ElevenLabs-Signature": sign_elevenlabs(GW_ELEVENLABS_SECRET, body, now - 3600)}
    assert (await stack.http.post("/gw/signed", content=body, headers=stale)).status_code == 401
    assert (
        await stack.http.post("/gw/signed", content=body, headers={"Content-Type": "application/json"})
    ).status_code == 401


async def test_health_checks_each_dependency(stack: Stack) -> None:
    resp = await stack.http.get("/example/health")
    assert resp.status_code == 200, resp.text
    checks = resp.json()["checks"]
    assert set(checks) == {"postgres", "temporal", "cache", "creds", "worker"}
    assert all(c["ok"] for c in checks.values())
    assert all("detail" not in c for c in checks.values()), "details are for operators"
    full = (await stack.http.get("/example/health", headers=stack.admin)).json()["checks"]
    assert full["worker"]["detail"] == "1 poller(s) on happ-example"
    assert full["creds"]["detail"] == {"set": 6, "missing": []}
    assert (await stack.http.get("/health")).status_code == 200


async def test_openapi_per_integration_carries_models_and_the_openapi_options(stack: Stack) -> None:
    doc = (await stack.http.get("/example/openapi.json")).json()
    op = doc["paths"]["/webhook/create-order"]["post"]
    assert op["summary"] == "Create new order" and op["tags"] == ["Orders"]
    assert op["requestBody"]["description"] == "Order details"
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["phone", "product_id"]
    assert op["responses"]["200"]["description"] == "Order created successfully"
    init = doc["paths"]["/webhook/agent-init"]["post"]
    assert init["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("InitWebhookPayload")
    assert "/webhook/retry" in doc["paths"] and "/webhook/nethunt" in doc["paths"]
    assert (await stack.http.get("/example/docs")).status_code == 200


async def test_inline_timeout_is_504_and_logged(stack: Stack) -> None:
    resp = await stack.http.post("/gw/sleepy", json={"text": "z"})
    assert resp.status_code == 504
    assert "did not finish within 0.3s" in resp.json()["error"]
    ends = [e for e in stack.capture.named("handler:end") if e.handler == "sleepy"]
    assert ends and ends[-1].error


async def test_aliased_fields_work_durably_and_answer_by_alias(stack: Stack) -> None:
    resp = await stack.http.post("/gw/aliased", json={"recordId": "rec-1"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"success": True, "recordId": "rec-1"}


async def test_the_sandbox_catches_a_non_deterministic_handler(stack: Stack) -> None:
    resp = await stack.http.post("/gw/wall-clock", json={"text": "t"})
    assert resp.status_code == 500
    assert "RestrictedWorkflowAccessError" in resp.json()["error"] and "datetime" in resp.json()["error"]


async def test_chunked_body_over_the_limit_is_413(stack: Stack) -> None:
    async def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"customer": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    resp = await stack.http.post("/gw/order", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["success"] is False


async def test_malformed_signature_headers_are_401(stack: Stack) -> None:
    body = b'{"text": "x"}'
    # Raw bytes, as a hostile sender would put them on the wire (latin-1 digits, non-hex).
    for header in (b"t=123,v0=\xc3\xa9", b"t=\xb2,v0=ab", b"nonsense", b"t=1,v0=", b"v0=" + b"a" * 64):
        resp = await stack.http.post(
            "/gw/signed",
            content=body,
            headers=[(b"ElevenLabs-Signature", header), (b"Content-Type", b"application/json")],
        )
        assert resp.status_code == 401, (header, resp.text)
