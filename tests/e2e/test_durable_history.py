"""A durable run reads in the Web UI like the handler's code: one activity per context call
(a local one for the framework's own PostgreSQL operations), named after the operation, the step
name as summary, and no secret value anywhere."""

from __future__ import annotations

import json
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from happ_integ.temporal import HandlerRunInput, HandlerRunResult
from tests.e2e.conftest import CANARIES, GW_WEBHOOK_TOKEN, PHONE, Stack
from tests.e2e.history_text import history_text


async def run_durably(
    stack: Stack, handler: str, payload: dict[str, object]
) -> tuple[dict[str, object], WorkflowHistory]:
    workflow_id = f"example:handler:{handler}:{uuid.uuid4().hex}"
    result = await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(integration="example", handler=handler, payload=payload),
        id=workflow_id,
        task_queue="happ-example",
        result_type=HandlerRunResult,
    )
    history = await stack.temporal.get_workflow_handle(workflow_id).fetch_history()
    return result.response, history


def activities(history: WorkflowHistory) -> list[tuple[str, str, str]]:
    """(operation, summary, "local" or "activity") for each operation the run performed, in order."""
    converter = DataConverter.default.payload_converter
    found = []
    for event in history.events:
        summary = (
            converter.from_payload(event.user_metadata.summary) if event.HasField("user_metadata") else ""
        )
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            found.append(
                (event.activity_task_scheduled_event_attributes.activity_type.name, summary, "activity")
            )
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                data = json.loads(marker.details["data"].payloads[0].data)
                found.append((data["activity_type"], summary, "local"))
    return found


async def test_one_activity_per_context_call_named_after_the_operation(stack: Stack) -> None:
    await stack.reset_calls()
    response, history = await run_durably(stack, "test-call", {"phoneNumber": PHONE, "sip": "sip-7"})
    assert response["success"] is True
    # The framework's own PostgreSQL operations run as local activities; the outside call does not.
    assert activities(history) == [
        ("creds.get", "creds.get", "local"),
        ("config.get", "config.get", "local"),
        ("db.query", "db.query", "local"),
        ("db.insert", "db.insert", "local"),
        ("http.request", "voice.originate", "activity"),
        ("db.update", "db.update", "local"),
    ]


async def test_step_names_become_summaries_and_crm_calls_are_crm_activities(stack: Stack) -> None:
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    response, history = await run_durably(stack, "agent-init", {"phone": PHONE, "conversationId": "c-9"})
    assert response["context"]["clientName"] == "Іван"
    assert activities(history) == [
        ("cache.get", "cache.get", "local"),
        ("creds.get", "creds.get", "local"),
        ("config.get", "config.get", "local"),
        ("crm.search_records", "crm.search", "activity"),
        ("cache.set", "cache.set", "local"),
    ]


async def test_the_handler_retries_policy_is_the_activity_retry_policy(stack: Stack) -> None:
    _, history = await run_durably(stack, "nethunt", {"recordId": stack.record_id, "phone": PHONE})
    policies = {
        e.activity_task_scheduled_event_attributes.retry_policy.maximum_attempts
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert policies == {4}, "nethunt declares retries=3: four attempts in all"


async def test_a_transient_crm_failure_is_retried_by_temporal(stack: Stack) -> None:
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    stack.sims.nethunt.fail_next(500, times=1)
    response, history = await run_durably(stack, "nethunt", {"recordId": stack.record_id, "phone": PHONE})
    assert response["success"] is True
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 2


async def test_no_secret_value_in_history_logs_or_responses(stack: Stack) -> None:
    await stack.reset_calls()
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    texts: list[str] = []
    histories: list[str] = []
    for handler, payload in (
        ("agent-init", {"phone": PHONE, "conversationId": "c-1"}),
        ("test-call", {"phoneNumber": PHONE, "sip": "sip-1"}),
        ("nethunt", {"recordId": stack.record_id, "phone": PHONE}),
    ):
        response, history = await run_durably(stack, handler, payload)
        histories.append(history_text(history))
        texts.append(json.dumps(response))
    for path, body in (
        ("/example/webhook/agent-init", {"phone": PHONE, "conversationId": "c-2"}),
        ("/example/test-call", {"phoneNumber": PHONE, "sip": "sip-1"}),
    ):
        resp = await stack.http.post(path, json=body, headers={"Authorization": f"Bearer {GW_WEBHOOK_TOKEN}"})
        assert resp.status_code == 200, resp.text
        texts.append(resp.text)
    texts.append((await stack.http.get("/example/secrets", headers=stack.admin)).text)
    texts.append(stack.log_text())
    texts.append(repr([event for event in stack.capture]))
    # The secrets were really used: the peers received them.
    assert any(r.header("authorization") == f"Bearer {CANARIES[1]}" for r in stack.sims.voice.requests)
    assert all(PHONE in text for text in histories), "the decoded payloads are what is searched"
    texts += histories
    for canary in CANARIES:
        assert all(canary not in text for text in texts), f"secret {canary[:14]}… leaked"
    raw = await stack.resources.pool.fetch(
        "SELECT ciphertext FROM happ_secrets WHERE integration = 'example'"
    )
    assert all(canary.encode() not in (r["ciphertext"] or b"") for r in raw for canary in CANARIES)


async def test_a_durable_run_logs_its_steps_once_under_its_workflow_id(stack: Stack) -> None:
    await stack.resources.pool.execute("DELETE FROM happ_cache WHERE integration = 'example'")
    workflow_id = f"example:handler:agent-init:{uuid.uuid4().hex}"
    await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(
            integration="example", handler="agent-init", payload={"phone": PHONE, "conversationId": "c-log"}
        ),
        id=workflow_id,
        task_queue="happ-example",
        result_type=HandlerRunResult,
    )
    lines = [json.loads(line) for line in stack.log_text().splitlines() if workflow_id in line]
    events = [(line.get("span"), line["event"]) for line in lines]
    assert events.count((None, "handler:start")) == 1 and events.count((None, "handler:end")) == 1
    assert events.count(("crm.search", "output")) == 1
    search = next(line for line in lines if line.get("span") == "crm.search" and line["event"] == "output")
    assert search["data"] == {"records": 1}, "transform= shapes what the log shows"
    assert ("creds.get", "skipped") in events, "skip_output= hides the step's output"
    assert all(line["traceId"] == workflow_id for line in lines)


async def test_runs_reuse_the_handlers_compiled_code(stack: Stack) -> None:
    # Each run imports the handler's module anew inside the sandbox; its code is compiled once per
    # worker process and served from memory after (no source compiled per run).
    from happ_integ import code_cache

    for n in range(2):
        response, _ = await run_durably(stack, "create-order", {"phone": PHONE, "product_id": f"cc{n}"})
        assert response["success"] is True
    cached = code_cache.cached_files()
    assert any(path.endswith("integrations/example/handlers/create_order.py") for path in cached), cached
    assert any(path.endswith("workflows/handler_run.py") for path in cached), cached
