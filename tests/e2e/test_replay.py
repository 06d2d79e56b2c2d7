"""Determinism: recorded `HandlerRun` histories replay against the current code.

Histories in tests/histories/ were recorded from real runs; a change to the workflow or to a
handler that changes its sequence of commands fails here. Re-record on purpose with
`HAPP_RECORD_HISTORIES=1 make test PYTEST_ARGS=tests/e2e/test_replay.py`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from happ_integ.temporal import HandlerRunInput, HandlerRunResult
from tests.e2e.conftest import PHONE, Stack
from worker import workflow_runner
from workflows.handler_run import HandlerRun

HISTORIES = Path(__file__).parent.parent / "histories"
RUNS = {
    "agent-init": {"phone": PHONE, "conversationId": "conv-replay"},
    "test-call": {"phoneNumber": PHONE, "sip": "sip-replay"},
    "nethunt": {"recordId": "000000000000000000000001", "phone": PHONE},
    "retry": {},
    "create-order": {"phone": PHONE, "product_id": "p-replay", "quantity": 1},
}


def replayer() -> Replayer:
    return Replayer(
        workflows=[HandlerRun], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )


async def record(stack: Stack, handler: str) -> WorkflowHistory:
    workflow_id = f"example:handler:{handler}:replay-{uuid.uuid4().hex}"
    await stack.temporal.execute_workflow(
        "HandlerRun",
        HandlerRunInput(integration="example", handler=handler, payload=RUNS[handler]),
        id=workflow_id,
        task_queue="happ-example",
        result_type=HandlerRunResult,
    )
    return await stack.temporal.get_workflow_handle(workflow_id).fetch_history()


async def test_fresh_histories_replay(stack: Stack) -> None:
    await stack.reset_calls()
    histories = [await record(stack, handler) for handler in RUNS]
    if os.environ.get("HAPP_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        for handler, history in zip(RUNS, histories, strict=True):
            (HISTORIES / f"handler_run_{handler}.json").write_text(history.to_json())
    for history in histories:
        await replayer().replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("handler_run_*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(stack: Stack, path: Path) -> None:
    history = WorkflowHistory.from_json("recorded", path.read_text())
    await replayer().replay_workflow(history)


def test_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES.glob("handler_run_*.json")} == {f"handler_run_{h}" for h in RUNS}
