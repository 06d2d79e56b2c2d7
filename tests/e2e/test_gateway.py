"""The gateway through HTTP: what a caller sees for good and bad requests."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from api.app import create_app
from happ_integ.embedded.process import free_port
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from simulator import sign_elevenlabs
from tests.e2e.conftest import ADMIN_TOKEN, GW_ELEVENLABS_SECRET, GW_WEBHOOK_TOKEN, Stack, serve
from tests.e2e.gw_integration import gw


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
    # The key in the id: a public route's caller scope (`anon`), the field's name and its type.
    assert first.headers["x-workflow-id"] == f"gw:handler:once-durable:anon:id:s.{key}"
    again = await stack.http.post("/gw/once-durable", json={"id": key, "text": "two"})
    assert again.json() == first.json() == {"success": True, "text": "one", "runs": 1}
    assert again.headers["x-happ-dedup"] == "hit", "answered from the dedup store, not by a second start"
    assert await runs_of(stack, key) == 1
    # The TTL has passed (its row expired): the same key is a new event and runs again.
    await stack.resources.pool.execute(
        "UPDATE happ_dedup SET expires_at = now() - interval '1 second' WHERE key = $1", f"anon:id:s.{key}"
    )
    later = await stack.http.post("/gw/once-durable", json={"id": key, "text": "three"})
    assert later.status_code == 200 and later.json() == {"success": True, "text": "three", "runs": 2}


async def test_idempotency_key_without_dedup_returns_the_finished_run(stack: Stack) -> None:
    key = uuid.uuid4().hex
    body = {"phone": "+380", "product_id": "idem"}
    first = await stack.http.post(
        "/example/webhook/create-order", json=body, headers={**stack.hook, "Idempotency-Key": key}
    )
    again = await stack.http.post(
        "/example/webhook/create-order", json=body, headers={**stack.hook, "Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["x-happ-dedup"] == "hit"
    assert again.headers["x-workflow-id"] == first.headers["x-workflow-id"], "the run that answered"
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


async def test_health_checks_each_dependency_for_the_admin_token(stack: Stack) -> None:
    resp = await stack.http.get("/example/health", headers=stack.admin)
    assert resp.status_code == 200, resp.text
    checks = resp.json()["checks"]
    assert set(checks) == {"postgres", "temporal", "cache", "creds", "worker"}
    assert all(c["ok"] for c in checks.values())
    assert checks["worker"]["detail"] == "1 poller(s) on happ-example"
    assert checks["creds"]["detail"] == {"set": 6, "missing": []}
    root = await stack.http.get("/health", headers=stack.admin)
    assert root.status_code == 200 and set(root.json()["checks"]) == {"postgres", "temporal"}


async def test_public_health_is_the_process_alive_and_nothing_else(stack: Stack) -> None:
    for path in ("/health", "/example/health", "/gw/health"):
        resp = await stack.http.get(path)
        assert resp.status_code == 200 and resp.json() == {"status": "ok"}, (path, resp.text)
        # A token that is not the admin token is told so, not given the liveness line.
        for wrong in (stack.hook, {"Authorization": "Bearer nope"}, {"Authorization": ""}):
            refused = await stack.http.get(path, headers=wrong)
            assert refused.status_code == 401 and refused.json()["success"] is False, (path, wrong)


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


ORDER = "/example/webhook/create-order"


async def orders_of(stack: Stack, product_id: str) -> int:
    return int(
        await stack.resources.pool.fetchval(
            "SELECT count(*) FROM example_orders WHERE product_id = $1", product_id
        )
    )


async def test_an_idempotency_key_reused_with_another_body_is_409(stack: Stack) -> None:
    key, product = uuid.uuid4().hex, "p-" + uuid.uuid4().hex[:8]
    first_body = {"phone": "+380991234567", "product_id": product, "quantity": 1}
    other_body = {**first_body, "quantity": 5}
    # Still running (?wait=0 answers 202) or finished: another body under the same key is refused.
    started = await stack.http.post(
        ORDER, params={"wait": 0}, json=first_body, headers={**stack.hook, "Idempotency-Key": key}
    )
    assert started.status_code in (200, 202), started.text
    for _ in range(2):
        reused = await stack.http.post(ORDER, json=other_body, headers={**stack.hook, "Idempotency-Key": key})
        assert reused.status_code == 409, reused.text
        assert reused.json()["error"].startswith("this Idempotency-Key was used with another body")
    # The same body again is the first request again: its answer, and still one order.
    first = await stack.http.post(ORDER, json=first_body, headers={**stack.hook, "Idempotency-Key": key})
    again = await stack.http.post(ORDER, json=first_body, headers={**stack.hook, "Idempotency-Key": key})
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["x-happ-dedup"] == "hit"
    assert first.headers["x-workflow-id"] == started.headers["x-workflow-id"]
    assert await orders_of(stack, product) == 1


async def test_an_idempotency_key_is_the_callers_own(stack: Stack) -> None:
    """Another credential (here the token after a rotation) sending the same key and body gets a
    run of its own, never the first caller's answer; the key stored holds no credential."""
    key, product = uuid.uuid4().hex, "p-" + uuid.uuid4().hex[:8]
    body = {"phone": "+380991234567", "product_id": product, "quantity": 1}
    first = await stack.http.post(ORDER, json=body, headers={**stack.hook, "Idempotency-Key": key})
    assert first.status_code == 200, first.text
    rotated = "rotated-" + uuid.uuid4().hex
    assert (
        await stack.http.put("/example/secrets", json={"WEBHOOK_TOKEN": rotated}, headers=stack.admin)
    ).status_code == 200
    try:
        other = await stack.http.post(
            ORDER, json=body, headers={"Authorization": f"Bearer {rotated}", "Idempotency-Key": key}
        )
    finally:
        await stack.http.put(
            "/example/secrets", json={"WEBHOOK_TOKEN": GW_WEBHOOK_TOKEN}, headers=stack.admin
        )
    assert other.status_code == 200, other.text
    assert other.json()["orderId"] != first.json()["orderId"] and "x-happ-dedup" not in other.headers
    assert other.headers["x-workflow-id"] != first.headers["x-workflow-id"]
    again = await stack.http.post(ORDER, json=body, headers={**stack.hook, "Idempotency-Key": key})
    assert again.json() == first.json(), "the first caller still gets its own answer"
    assert await orders_of(stack, product) == 2
    keys = await stack.resources.pool.fetch(
        "SELECT key FROM happ_dedup WHERE integration = 'example' AND handler = 'create-order' AND key LIKE $1",
        f"%@{key}",
    )
    stored = [r["key"] for r in keys] + [first.headers["x-workflow-id"], other.headers["x-workflow-id"]]
    assert len(keys) == 2
    assert not any(token in text for text in stored for token in (GW_WEBHOOK_TOKEN, rotated))


async def test_dedup_keys_keep_the_fields_name_and_the_values_type(stack: Stack) -> None:
    """`{"id": 7}`, `{"id": "7"}` and `{"recordId": "7"}` are three events, not one."""
    text, n = uuid.uuid4().hex, uuid.uuid4().int % 10**9
    answers = []
    for fields in ({"id": n}, {"id": str(n)}, {"recordId": str(n)}):
        resp = await stack.http.post("/gw/once-typed", json={**fields, "text": text}, headers=stack.hook)
        assert resp.status_code == 200 and "x-happ-dedup" not in resp.headers, resp.text
        answers.append(resp.json()["runs"])
    assert answers == [1, 2, 3]
    repeated = await stack.http.post("/gw/once-typed", json={"id": n, "text": text}, headers=stack.hook)
    assert repeated.headers["x-happ-dedup"] == "hit" and repeated.json()["runs"] == 1
    assert await runs_of(stack, text) == 3


async def test_unauthenticated_routes_are_named_in_a_warning_at_start(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="happ.api"):
        create_app(stack.settings, stack.runtime.integrations, sink=CaptureSink())
    warned = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "integration gw serves POST /echo without authentication" in warned
    assert "GET /lookup" in warned
    # Routes that authenticate (the default, or a scheme they name) are not in it.
    for path in ("/secure ", "/signed ", "/once-typed ", "/webhook/create-order ", "/test-call "):
        assert path not in warned, path


async def first_line_without_the_body(
    port: int, method: str, path: str, headers: dict[str, str], seconds: float = 3
) -> bytes:
    """Send a request head announcing 1 MiB of body, and never the body: the status line the
    server answers, or TimeoutError when it waits for the body first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", "Host: happ", "Content-Type: application/json"]
        lines += [f"Content-Length: {1024 * 1024}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), seconds)
    finally:
        writer.close()


async def test_a_wrong_credential_is_refused_before_the_body_is_read(stack: Stack) -> None:
    """Over real HTTP: the request head says 1 MiB follows and none is sent. A wrong token is
    answered 401 at once (nothing of the body was waited for); the right one waits for it."""
    replica = create_app(stack.settings, stack.runtime.integrations, sink=CaptureSink())
    await replica.state.runtime.start()
    port = free_port()
    server, task = await serve(replica, port)
    wrong = {"Authorization": "Bearer not-the-token"}
    try:
        for method, path in (
            ("POST", "/gw/once-typed"),  # a handler route, inline (default auth)
            ("POST", ORDER),  # a handler route, durable
            ("PUT", "/gw/secrets"),  # an admin route
            ("POST", "/example/cron/trigger"),  # a built-in
        ):
            for headers in (wrong, {}):
                line = await first_line_without_the_body(port, method, path, headers)
                assert line.startswith(b"HTTP/1.1 401"), (method, path, headers, line)
        with pytest.raises(TimeoutError):  # the control: an authenticated request reads its body
            await first_line_without_the_body(port, "POST", "/gw/once-typed", stack.hook, seconds=1)
    finally:
        server.should_exit = True
        await task
        await replica.state.runtime.stop()


async def test_public_health_needs_no_dependency_and_the_admin_report_names_them() -> None:
    """PostgreSQL and Temporal unreachable: anyone still gets the process's `ok` at once (nothing
    was touched for it); the admin token gets the real report, 503 naming both."""
    settings = Settings(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/happ",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        HAPP_ADMIN_TOKEN=ADMIN_TOKEN,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    app = create_app(settings, {"gw": gw}, sink=CaptureSink())
    await app.state.runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as http:
            for path in ("/health", "/gw/health"):
                started = time.monotonic()
                for _ in range(20):
                    resp = await http.get(path)
                    assert resp.status_code == 200 and resp.json() == {"status": "ok"}, resp.text
                assert time.monotonic() - started < 1.0, "twenty liveness answers, no dependency waited on"
                report = await http.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                assert report.status_code == 503, report.text
                checks = report.json()["checks"]
                assert checks["postgres"]["ok"] is False and checks["temporal"]["ok"] is False
    finally:
        await app.state.runtime.stop()


async def test_a_route_whose_token_is_not_set_is_503_naming_it_with_retry_after(stack: Stack) -> None:
    """Secure by default, also before setup is finished: no token set means nobody gets in, and a
    sender with a token is told to come back rather than that its credential is wrong; a caller
    with no credential at all is refused before the secret is read."""
    assert (
        await stack.http.put("/example/secrets", json={"WEBHOOK_TOKEN": ""}, headers=stack.admin)
    ).status_code == 200
    try:
        resp = await stack.http.post(ORDER, json={"phone": "+380", "product_id": "p"}, headers=stack.hook)
        assert resp.status_code == 503 and resp.headers["retry-after"] == "60", resp.text
        assert "secret WEBHOOK_TOKEN of 'example' is not set" in resp.json()["error"]
        anonymous = await stack.http.post(ORDER, json={"phone": "+380", "product_id": "p"})
        assert anonymous.status_code == 401, anonymous.text
    finally:
        await stack.http.put(
            "/example/secrets", json={"WEBHOOK_TOKEN": GW_WEBHOOK_TOKEN}, headers=stack.admin
        )
    assert (
        await stack.http.post(ORDER, json={"phone": "+380", "product_id": "p"}, headers=stack.hook)
    ).status_code == 200
