"""Secret references resolve only when `creds.get` handed them out: text a caller typed never does."""

from __future__ import annotations

import uuid

from happ_integ.temporal import HandlerRunInput, HandlerRunResult
from tests.e2e.conftest import GW_WEBHOOK_TOKEN, Stack
from tests.e2e.history_text import history_text


def probes(stack: Stack) -> list[tuple[str | None, object]]:
    return [(r.header("x-token"), r.json) for r in stack.sims.voice.requests if r.path.endswith("/_sim/echo")]


async def test_a_typed_placeholder_stays_text_in_both_modes(stack: Stack) -> None:
    stack.sims.voice.clear_requests()
    forged = ["{{secret:WEBHOOK_TOKEN}}", "{{secret:WEBHOOK_TOKEN:0123456789abcdef}}"]
    for note in forged:
        resp = await stack.http.post("/gw/forward", json={"note": note})
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
    resp = await stack.http.post("/gw/forward", json={"note": "hi"})
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
