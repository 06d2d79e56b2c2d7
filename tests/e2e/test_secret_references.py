"""Secret references resolve only when `creds.get` handed them out, in the run it handed them to:
text a caller typed never does, nor a real reference copied from another run's history."""

from __future__ import annotations

import re
import uuid

from temporalio.common import WorkflowIDReusePolicy

from happ_integ.temporal import HandlerRunInput, HandlerRunResult
from tests.e2e.conftest import GW_WEBHOOK_TOKEN, Stack
from tests.e2e.history_text import history_text

# The gw integration's handlers take its WEBHOOK_TOKEN (routes authenticate by default).
HOOK = {"Authorization": f"Bearer {GW_WEBHOOK_TOKEN}"}


def probes(stack: Stack) -> list[tuple[str | None, object]]:
    return [(r.header("x-token"), r.json) for r in stack.sims.voice.requests if r.path.endswith("/_sim/echo")]


async def forward_durably(stack: Stack, note: str, workflow_id: str | None = None) -> str:
    """The `forward` handler as a HandlerRun: it copies `note` into the body of its http.request."""
    workflow_id = workflow_id or f"gw:handler:forward:{uuid.uuid4().hex}"
    await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(integration="gw", handler="forward", payload={"note": note}),
        id=workflow_id,
        task_queue="happ-gw",
        result_type=HandlerRunResult,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    return workflow_id


async def test_a_reference_copied_from_a_history_stays_text_in_every_other_run(stack: Stack) -> None:
    """What a caller who reads Temporal history can do: take the reference `creds.get` handed one
    run (it is in that run's http.request input) and put it in a payload. A durable handler that
    copies it into its http.request sends the text as typed, in a new run, in a new run under the
    same workflow id (a reused Idempotency-Key), and inline; its own reference still resolves."""
    first = await forward_durably(stack, "hi")
    history = history_text(await stack.temporal.get_workflow_handle(first).fetch_history())
    copied = set(re.findall(r"\{\{secret:WEBHOOK_TOKEN:[0-9a-f]{16}\}\}", history))
    assert len(copied) == 1, history
    [stolen] = copied
    stack.sims.voice.clear_requests()
    await forward_durably(stack, stolen)
    await forward_durably(stack, f"my token: {stolen}", workflow_id=first)
    resp = await stack.http.post("/gw/forward", json={"note": stolen}, headers=HOOK)
    assert resp.status_code == 200, resp.text
    seen = probes(stack)
    assert [body for _, body in seen] == [{"note": stolen}, {"note": f"my token: {stolen}"}, {"note": stolen}]
    assert all(token == GW_WEBHOOK_TOKEN for token, _ in seen)  # each run's own reference resolved
    assert all(GW_WEBHOOK_TOKEN not in str(body) for _, body in seen)


async def test_a_typed_placeholder_stays_text_in_both_modes(stack: Stack) -> None:
    stack.sims.voice.clear_requests()
    forged = ["{{secret:WEBHOOK_TOKEN}}", "{{secret:WEBHOOK_TOKEN:0123456789abcdef}}"]
    for note in forged:
        resp = await stack.http.post("/gw/forward", json={"note": note}, headers=HOOK)
        assert resp.status_code == 200, resp.text
        await stack.temporal.execute_workflow(
            "HandlerRun",
            HandlerRunInput(integration="gw", handler="forward", payload={"note": note}),
            id=f"gw:handler:forward:{uuid.uuid4().hex}",
            task_queue="happ-gw",
            result_type=HandlerRunResult,
        )
    seen = probes(stack)
    assert len(seen) == 4
    # Our own reference resolved to the real token; the caller's text arrived as typed.
    assert all(token == GW_WEBHOOK_TOKEN for token, _ in seen)
    assert [body for _, body in seen] == [{"note": forged[0]}] * 2 + [{"note": forged[1]}] * 2
    assert all(GW_WEBHOOK_TOKEN not in str(body) for _, body in seen)


async def test_a_secret_echoed_by_a_peer_is_put_back_as_its_name(stack: Stack) -> None:
    """The echo peer returns our X-Token header; neither the answer nor the history holds its value."""
    resp = await stack.http.post("/gw/forward", json={"note": "hi"}, headers=HOOK)
    assert resp.status_code == 200 and GW_WEBHOOK_TOKEN not in resp.text
    assert "{{secret:WEBHOOK_TOKEN}}" in resp.json()["text"]
    workflow_id = f"gw:handler:forward:{uuid.uuid4().hex}"
    result = await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(integration="gw", handler="forward", payload={"note": "hi"}),
        id=workflow_id,
        task_queue="happ-gw",
        result_type=HandlerRunResult,
    )
    assert "{{secret:WEBHOOK_TOKEN}}" in result.response["text"]
    history = history_text(await stack.temporal.get_workflow_handle(workflow_id).fetch_history())
    assert "x-token" in history and GW_WEBHOOK_TOKEN not in history
