"""The example handlers, run inline and durably from one source, give the same answers."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

from pydantic import BaseModel

from happ_integ.handler import HandlerDefinition
from happ_integ.inline import run_inline
from happ_integ.temporal import HandlerRunInput, HandlerRunResult
from integrations.example import integration
from tests.e2e.conftest import GW_WEBHOOK_TOKEN, PHONE, Stack


async def run_one(
    stack: Stack, name: str, payload: dict[str, Any], mode: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    definition: HandlerDefinition = integration.handler(name)
    model: BaseModel = definition.payload_model.model_validate(payload)
    if mode == "inline":
        inline = await run_inline(
            stack.resources, "example", definition, model, f"inline-{name}", stack.capture
        )
        return inline.model_dump(mode="json", by_alias=True), None
    durable = await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(
            integration="example", handler=name, payload=model.model_dump(mode="json", by_alias=True)
        ),
        id=f"example:handler:{name}:test-{uuid.uuid4().hex}",
        task_queue=integration.task_queue,
        result_type=HandlerRunResult,
    )
    return None, durable.response


async def both(stack: Stack, name: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    inline, _ = await run_one(stack, name, payload, "inline")
    _, durable = await run_one(stack, name, payload, "durable")
    assert inline is not None and durable is not None
    return inline, durable


async def test_agent_init_reads_crm_through_creds_and_caches(stack: Stack) -> None:
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    stack.sims.nethunt.clear_requests()
    inline, durable = await both(stack, "agent-init", {"phone": PHONE, "conversationId": "conv-1"})
    assert inline == durable
    assert inline["context"]["clientName"] == "Іван"
    assert inline["context"]["company"] == "ТОВ Компанія"
    # The second run was served from the cache the first one wrote: NetHunt saw one search.
    searches = [r for r in stack.sims.nethunt.requests if "find-record" in r.path and r.query.get("query")]
    assert len(searches) == 1


async def test_agent_init_without_fields_answers_the_default(stack: Stack) -> None:
    inline, durable = await both(stack, "agent-init", {"phone": PHONE})
    assert (
        inline
        == durable
        == {
            "firstMessage": "Привет! Чем могу помочь?",
            "context": {"clientName": "Клиент", "company": None, "email": None},
        }
    )


async def test_retry_requeues_due_calls(stack: Stack) -> None:
    async def seed() -> None:
        await stack.reset_calls()
        await stack.resources.pool.execute(
            "INSERT INTO example_calls (id, status, next_retry_at) VALUES "
            "('due1', 'failed', now() - interval '1 minute'), ('due2', 'failed', now() - interval '1 hour'),"
            "('later', 'failed', now() + interval '1 hour')"
        )

    answers = []
    for mode in ("inline", "durable"):
        await seed()
        inline, durable = await run_one(stack, "retry", {}, mode)
        answers.append(inline or durable)
        rows = await stack.resources.pool.fetch("SELECT id, status FROM example_calls ORDER BY id")
        assert [(r["id"], r["status"]) for r in rows] == [
            ("due1", "initiated"),
            ("due2", "initiated"),
            ("later", "failed"),
        ]
    assert answers[0] == answers[1] == {"success": True, "error": None, "processed": 2}


async def test_test_call_originates_and_respects_the_configured_limit(stack: Stack) -> None:
    await stack.reset_calls()
    stack.sims.voice.calls.clear()
    payload = {"phoneNumber": PHONE, "sip": "sip-1"}
    inline, durable = await both(stack, "test-call", payload)
    for answer in (inline, durable):
        assert answer["success"] is True and answer["message"] == "Call initiated"
        assert answer["callId"].startswith("call_")
    rows = await stack.resources.pool.fetch("SELECT id, status, callee FROM example_calls ORDER BY id")
    assert {r["id"] for r in rows} == {inline["callId"], durable["callId"]}
    assert {r["status"] for r in rows} == {"in_progress"} and {r["callee"] for r in rows} == {PHONE}
    # The voice SaaS got the real bearer (resolved inside the activity) and our call ids.
    assert len(stack.sims.voice.calls) == 2
    originates = stack.sims.voice.requests_to("POST", "/sip-1/originate/")
    assert all(r.header("authorization") == f"Bearer {stack.sims.voice.token}" for r in originates)

    # Config says 3 concurrent calls; a third fills the limit and a fourth is refused, in both modes.
    await stack.resources.pool.execute("INSERT INTO example_calls (id, status) VALUES ('busy', 'initiated')")
    inline, durable = await both(stack, "test-call", payload)
    assert (
        inline
        == durable
        == {"success": False, "error": "Max calls limit reached (3)", "callId": None, "message": None}
    )


async def test_test_call_reports_a_voice_api_error(stack: Stack) -> None:
    await stack.reset_calls()
    stack.sims.voice.fail_next(503, times=2)
    inline, durable = await both(stack, "test-call", {"phoneNumber": PHONE, "sip": "sip-1"})
    for answer in (inline, durable):
        assert answer["success"] is False and answer["error"] == "API error: 503"
    rows = await stack.resources.pool.fetch("SELECT status FROM example_calls")
    assert [r["status"] for r in rows] == ["failed", "failed"]


async def test_nethunt_creates_a_call_from_a_cached_crm_record(stack: Stack) -> None:
    await stack.reset_calls()
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    before = len(stack.sims.nethunt.requests)
    inline, durable = await both(stack, "nethunt", {"recordId": stack.record_id, "phone": PHONE})
    for answer in (inline, durable):
        assert answer["success"] is True and answer["callId"].startswith("call_")
    rows = await stack.resources.pool.fetch("SELECT lead_id, phone, status FROM example_calls")
    assert [(r["lead_id"], r["phone"], r["status"]) for r in rows] == [
        (stack.record_id, PHONE, "initiated")
    ] * 2
    assert len(stack.sims.nethunt.requests) - before == 1, "the second run reads the record from the cache"


async def test_nethunt_reports_a_missing_record_and_missing_fields(stack: Stack) -> None:
    inline, durable = await both(stack, "nethunt", {"recordId": "f" * 24, "phone": PHONE})
    assert inline == durable == {"success": False, "error": "CRM record not found", "callId": None}
    inline, durable = await both(stack, "nethunt", {"phone": PHONE})
    assert inline == durable == {"success": False, "error": "recordId and phone are required", "callId": None}


async def test_create_order_stores_the_order(stack: Stack) -> None:
    inline, durable = await both(stack, "create-order", {"phone": PHONE, "product_id": "p1", "quantity": 2})
    for answer in (inline, durable):
        assert answer["success"] is True and answer["orderId"].startswith("ord_")
    rows = await stack.resources.pool.fetch(
        "SELECT id, quantity FROM example_orders WHERE id = ANY($1)", [inline["orderId"], durable["orderId"]]
    )
    assert sorted(r["quantity"] for r in rows) == [2, 2]


async def test_a_database_refusal_is_the_same_answer_inline_and_durable(stack: Stack) -> None:
    # In a durable run the INSERT is a local activity, whose failure reaches the workflow in
    # another shape than a regular activity's: the sender still gets the 422 an inline run gives.
    pool = stack.resources.pool
    await pool.execute(
        "ALTER TABLE example_orders ADD CONSTRAINT refuse_p_refused CHECK (product_id <> 'p-refused')"
    )
    try:
        body = {"phone": PHONE, "product_id": "p-refused", "quantity": 1}
        inline = await stack.http.post("/example/webhook/create-order-inline", json=body, headers=stack.hook)
        durable = await stack.http.post("/example/webhook/create-order", json=body, headers=stack.hook)
    finally:
        await pool.execute("ALTER TABLE example_orders DROP CONSTRAINT refuse_p_refused")
    assert inline.status_code == durable.status_code == 422, (inline.text, durable.text)
    assert inline.json()["error"] == durable.json()["error"]
    assert "check violation of refuse_p_refused" in durable.json()["error"]
    assert durable.json()["workflow_id"].startswith("example:handler:create-order:")


async def test_test_call_needs_the_webhook_token_and_a_plain_sip(stack: Stack) -> None:
    body = {"phoneNumber": PHONE, "sip": "sip-1"}
    assert (await stack.http.post("/example/test-call", json=body)).status_code == 401
    bearer = {"Authorization": f"Bearer {GW_WEBHOOK_TOKEN}"}
    climbing = await stack.http.post(
        "/example/test-call", json={**body, "sip": "../../admin"}, headers=bearer
    )
    assert climbing.status_code == 422 and climbing.json()["detail"][0]["field"] == "sip"


async def test_test_call_marks_the_row_failed_when_the_voice_api_is_unreachable(stack: Stack) -> None:
    await stack.reset_calls()
    definition = integration.handler("test-call")
    broken = stack.resources.settings.model_copy(update={"saas_api_url": "http://127.0.0.1:9"})
    resources = dataclasses.replace(stack.resources, settings=broken)
    answer = await run_inline(
        resources,
        "example",
        definition,
        definition.payload_model.model_validate({"phoneNumber": PHONE, "sip": "s"}),
        "t",
        stack.capture,
    )
    assert answer.model_dump()["success"] is False
    rows = await stack.resources.pool.fetch("SELECT status FROM example_calls")
    assert [r["status"] for r in rows] == ["failed"]


async def test_agent_init_answers_the_default_when_the_crm_fails(stack: Stack) -> None:
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    stack.sims.nethunt.fail_next(404, times=1)
    inline, _ = await run_one(stack, "agent-init", {"phone": PHONE, "conversationId": "conv-x"}, "inline")
    assert inline == {
        "firstMessage": "Привет! Чем могу помочь?",
        "context": {"clientName": "Клиент", "company": None, "email": None},
    }


async def test_nethunt_webhook_over_http_runs_once_per_record(stack: Stack) -> None:
    """`POST /webhook/{name}` for an event-only handler: durable, keyed by recordId, deduplicated."""
    await stack.reset_calls()
    await stack.resources.pool.execute("DELETE FROM happ_dedup WHERE integration = 'example'")
    body = {"recordId": stack.record_id, "phone": PHONE}
    assert (await stack.http.post("/example/webhook/nethunt", json=body)).status_code == 401
    first = await stack.http.post("/example/webhook/nethunt", json=body, headers=stack.hook)
    assert first.status_code == 200 and first.json()["success"] is True, first.text
    # The caller's scope (a digest of its token, never the token), the key field, the value's type.
    workflow_id = first.headers["x-workflow-id"]
    assert re.fullmatch(
        rf"example:handler:nethunt:c[0-9a-f]{{16}}:recordId:s\.{stack.record_id}", workflow_id
    )
    assert GW_WEBHOOK_TOKEN not in workflow_id
    again = await stack.http.post("/example/webhook/nethunt", json=body, headers=stack.hook)
    assert again.json() == first.json() and again.headers["x-happ-dedup"] == "hit"
    assert await stack.resources.pool.fetchval("SELECT count(*) FROM example_calls") == 1
