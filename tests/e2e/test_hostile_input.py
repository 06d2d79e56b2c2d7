"""Input a fuzzer or a hostile sender produces: refused with a 4xx that names the problem, before
anything is stored or started, and never a run that can neither finish nor fail."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid

import pytest
from starlette.requests import Request
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from api.idempotency import caller_scope, scoped_idempotency_key
from happ_integ.handler import BearerAuth
from happ_integ.logs import JsonTransport, LogEvent
from happ_integ.temporal import HandlerRunInput, HandlerRunResult, handler_workflow_id
from tests.e2e.conftest import GW_WEBHOOK_TOKEN, PHONE, Stack
from workflows.handler_run import HandlerRun

ORDER = "/example/webhook/create-order"


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def order(**extra: object) -> dict[str, object]:
    return {"phone": PHONE, "product_id": "p-1", "quantity": 1, **extra}


def run_of_key(stack: Stack, key: str) -> str:
    """The workflow id create-order's run gets for this Idempotency-Key from the stack's caller."""
    request = Request(
        {"type": "http", "headers": [(b"authorization", f"Bearer {GW_WEBHOOK_TOKEN}".encode())]}
    )
    return handler_workflow_id(
        "example",
        "create-order",
        scoped_idempotency_key(caller_scope(request, BearerAuth(), stack.settings), key),
    )


async def no_run_with_key(stack: Stack, key: str) -> bool:
    try:
        await stack.temporal.get_workflow_handle(run_of_key(stack, key)).describe()
    except RPCError:
        return True
    return False


@pytest.mark.parametrize("depth", [80, 220, 600, 5000])
async def test_deeply_nested_json_is_refused_before_a_run_starts(stack: Stack, depth: int) -> None:
    key = uuid.uuid4().hex
    body = (
        json.dumps(order(extra=nested(depth)))
        if depth < 900
        else '{"extra":' + "[" * depth + "]" * depth + "}"
    )
    resp = await stack.http.post(
        ORDER,
        content=body,
        headers={**stack.hook, "Content-Type": "application/json", "Idempotency-Key": key},
    )
    assert resp.status_code == 422, resp.text
    assert "nested deeper than 64 levels" in resp.json()["error"]
    assert await no_run_with_key(stack, key)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ('{"phone": "\\ud800", "product_id": "p"}', "unpaired surrogate"),
        ('{"phone": "+380", "product_id": "p", "x": "\\udc00"}', "unpaired surrogate"),
        ('{"phone": "+380\\u0000", "product_id": "p"}', "NUL"),
        ('{"\\ud83d": 1, "phone": "+380", "product_id": "p"}', "unpaired surrogate"),
    ],
)
async def test_text_that_is_not_text_is_refused(stack: Stack, raw: str, problem: str) -> None:
    resp = await stack.http.post(
        ORDER, content=raw, headers={**stack.hook, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    assert problem in resp.json()["error"]


async def test_a_valid_surrogate_pair_is_text(stack: Stack) -> None:
    raw = '{"phone": "+380994829573", "product_id": "\\ud83d\\ude00"}'
    resp = await stack.http.post(
        ORDER, content=raw, headers={**stack.hook, "Content-Type": "application/json"}
    )
    assert resp.status_code == 200, resp.text


async def test_bytes_that_are_not_utf8_are_422(stack: Stack) -> None:
    resp = await stack.http.post(
        ORDER,
        content=b'{"phone": "\xff\xfe", "product_id": "p"}',
        headers={**stack.hook, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and "UTF-8" in resp.json()["error"]


async def test_idempotency_key_is_limited_and_long_dedup_keys_make_valid_ids(stack: Stack) -> None:
    resp = await stack.http.post(ORDER, json=order(), headers={**stack.hook, "Idempotency-Key": "k" * 2000})
    assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "Idempotency-Key"
    # At the limit, the key is hashed into the workflow id (ids are limited and shown in the UI).
    key = "k" * 255
    first = await stack.http.post(ORDER, json=order(), headers={**stack.hook, "Idempotency-Key": key})
    again = await stack.http.post(ORDER, json=order(), headers={**stack.hook, "Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    workflow_id = first.headers["X-Workflow-Id"]
    assert len(workflow_id) < 100 and key not in workflow_id
    assert workflow_id == run_of_key(stack, key), "no_run_with_key looks where the runs are"
    assert again.json() == first.json()


async def test_numbers_outside_the_models_bounds_never_start_a_run(stack: Stack) -> None:
    key = uuid.uuid4().hex
    resp = await stack.http.post(
        ORDER, json=order(quantity=65799616724), headers={**stack.hook, "Idempotency-Key": key}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["field"] == "quantity"
    assert await no_run_with_key(stack, key)


async def test_a_database_refusal_reaches_the_caller_without_sql_or_driver_text(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="happ.db"):
        resp = await stack.http.post("/gw/number", json={"n": 65799616724})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error == "column n does not fit its type (value out of int32 range)"
    assert "$1" not in error and "65799616724" not in error and "INSERT" not in error
    # The whole error stays in the log for the operator.
    assert any("65799616724" in record.getMessage() for record in caplog.records)


async def test_admin_input_is_validated_before_anything_is_written(stack: Stack) -> None:
    resp = await stack.http.put(
        "/example/secrets",
        content='{"ZZ_S": "\\udc00"}',
        headers={**stack.admin, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    listed = await stack.http.get("/example/secrets", headers=stack.admin)
    assert "ZZ_S" not in listed.json()["secrets"]

    deep = '{"v": ' + "[" * 900 + "]" * 900 + "}"
    resp = await stack.http.put(
        "/example/config/zzz", content=deep, headers={**stack.admin, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert (await stack.http.get("/example/config/zzz", headers=stack.admin)).status_code == 404

    resp = await stack.http.put("/example/secrets", json={"lower_case": "x"}, headers=stack.admin)
    assert resp.status_code == 422 and "lower_case" in resp.text


async def test_options_and_wrong_methods_name_every_allowed_method(stack: Stack) -> None:
    for path, allowed in (("/example/secrets", "GET, PUT"), ("/example/config/call_handling", "GET, PUT")):
        resp = await stack.http.request("OPTIONS", path)
        assert resp.status_code == 405 and resp.headers["allow"] == allowed
        assert (await stack.http.delete(path)).headers["allow"] == allowed


async def test_a_run_whose_input_cannot_be_decoded_fails_instead_of_retrying(stack: Stack) -> None:
    # Past the gateway (a client of its own): the worker's converter stops near 200 levels.
    handle = await stack.temporal.start_workflow(
        HandlerRun.run,
        HandlerRunInput(integration="example", handler="create-order", payload=order(extra=nested(230))),
        id=f"example:handler:create-order:poison-{uuid.uuid4().hex}",
        task_queue="happ-example",
        result_type=HandlerRunResult,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), 20)
    assert "ValidationError" in str(failed.value.cause)


async def test_handler_runs_have_a_run_timeout(stack: Stack) -> None:
    resp = await stack.http.post(ORDER, json=order(), headers=stack.hook)
    description = await stack.temporal.get_workflow_handle(resp.headers["X-Workflow-Id"]).describe()
    timeout = description.raw_description.execution_config.workflow_execution_timeout
    assert timeout.seconds == 3600


def test_a_log_line_with_text_the_stream_cannot_encode_is_written_escaped() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    JsonTransport(stream)(LogEvent(level="info", event="handler:start", data={"x": "\ud800 тест"}))
    line = raw.getvalue().decode("utf-8")
    assert '"event":"handler:start"' in line and "\\ud800" in line and "тест" in line
