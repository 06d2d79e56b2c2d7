"""The baselines' server: FastAPI + uvicorn and a plain Temporal client, with nothing of happ's.

Each route does by hand the least that the happ route it is compared with must do, so the ratio
is what the framework adds (validation, auth, routing, lookups, logging, error mapping):

- `POST /agent-init`: the same JSON agent-init answers for a call in flight;
- `POST /{integration}/call-events`: the call's `call_event` Update, sent with a plain client, its answer returned;
- `POST /orders/inline`: the order INSERT over asyncpg;
- `POST /orders/durable`: a minimal workflow (one local activity doing the same INSERT) run and
  awaited, on a worker in this process (task queue `bare`);
- `POST /calls`, `POST /calls/{id}/dialled`, `…/events`, `…/result`: a hand-written call
  workflow with the steps of an `OutboundCall` and none of its logic: as many local activities,
  activities, child runs with their activities, Updates and signals to a queue workflow (each a
  no-op), for the call-throughput benchmark.

    DATABASE_URL=… TEMPORAL_ADDRESS=… uvicorn bench.bare_app:app --port 3100
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from happ_integ.calls.clock import spoken_date
from happ_integ.codec import data_converter

VARIABLES = {
    "client_name": "Іван Петренко",
    "company": "ТОВ Компанія",
    "lead_source": "Facebook",
    "call_id": "c_bench",
}
TASK_QUEUE = "bare"
state: dict[str, Any] = {}


@activity.defn(name="bare.insert_order")
async def insert_order(order: dict[str, Any]) -> str:
    await state["pool"].execute(
        "INSERT INTO bare_orders (id, phone, product_id, quantity) VALUES ($1, $2, $3, $4)",
        order["id"],
        order["phone"],
        order["product_id"],
        order.get("quantity", 1),
    )
    return str(order["id"])


@workflow.defn(name="BareOrder", sandboxed=False)
class BareOrder:
    @workflow.run
    async def run(self, order: dict[str, Any]) -> str:
        return await workflow.execute_local_activity(
            insert_order, order, start_to_close_timeout=timedelta(seconds=10)
        )


@activity.defn(name="bare.step")
async def step(name: str) -> str:
    return name


def _step(name: str) -> Any:
    return workflow.execute_activity(step, name, start_to_close_timeout=timedelta(seconds=10))


def _local_step(name: str) -> Any:
    return workflow.execute_local_activity(step, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn(name="BareHandler", sandboxed=False)
class BareHandler:
    """A handler run: `steps` activities in a row (a CRM lookup is one, a post-call's writes three)."""

    @workflow.run
    async def run(self, steps: int) -> None:
        for n in range(steps):
            await _step(f"crm-{n}")


@workflow.defn(name="BareQueue", sandboxed=False)
class BareQueue:
    """Grants every request at once: the two signals each way a call's slot costs, without a limit."""

    def __init__(self) -> None:
        self.waiting: list[str] = []

    @workflow.signal
    def acquire(self, workflow_id: str) -> None:
        self.waiting.append(workflow_id)

    @workflow.signal
    def release(self, workflow_id: str) -> None:
        pass

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.waiting))
            granted, self.waiting = self.waiting, []
            for workflow_id in granted:
                await workflow.get_external_workflow_handle(workflow_id).signal(BareCall.granted)


@workflow.defn(name="BareCall", sandboxed=False)
class BareCall:
    """An `OutboundCall`'s steps, in its order: config and row (local), a slot (signals), the
    lookup (a child run), originate (an activity), three events (Updates), the slot back, the
    analysis (an activity), the state stored (local), the post-call (a child run of three steps)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.slot = False
        self.dialled = False

    @workflow.signal
    def granted(self) -> None:
        self.slot = True

    @workflow.update
    async def until_dialled(self) -> bool:
        """Answers once originate has returned: the sender learns of the dial when happ's would."""
        await workflow.wait_condition(lambda: self.dialled)
        return True

    @workflow.update
    def event(self, kind: str) -> str:
        self.events.append(kind)
        return kind

    @workflow.run
    async def run(self, call_id: str) -> int:
        await _local_step("config")
        await _local_step("row")
        queue = workflow.get_external_workflow_handle(QUEUE_ID)
        await queue.signal(BareQueue.acquire, workflow.info().workflow_id)
        await workflow.wait_condition(lambda: self.slot)
        await workflow.execute_child_workflow(BareHandler.run, 1, id=f"{call_id}:lookup")
        await _local_step("row")
        await _step("originate")
        self.dialled = True
        await _local_step("row")
        await workflow.wait_condition(lambda: len(self.events) >= 3)
        await queue.signal(BareQueue.release, workflow.info().workflow_id)
        await _local_step("row")
        await _step("analyze")
        await _local_step("row")
        await workflow.execute_child_workflow(BareHandler.run, 3, id=f"{call_id}:postcall")
        await _local_step("row")
        return len(self.events)


QUEUE_ID = "bare-queue"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bare_orders (id text PRIMARY KEY, phone text, product_id text, quantity int)"
    )
    state["pool"] = pool
    # Payloads encrypted as in production (the same key as happ's processes): the call-events route
    # reads the Update's answer from happ's own workflows, and a deployment pays for the codec.
    client = await Client.connect(
        os.environ["TEMPORAL_ADDRESS"], data_converter=data_converter(os.environ.get("HAPP_PAYLOAD_KEY"))
    )
    state["client"] = client
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BareOrder, BareHandler, BareQueue, BareCall],
        activities=[insert_order, step],
    )
    await client.start_workflow(
        BareQueue.run,
        id=QUEUE_ID,
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    running = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        await worker.shutdown()
        await running
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/agent-init")
async def agent_init(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "conversation_initiation_client_data",
        "dynamic_variables": {**VARIABLES, **spoken_date(datetime.now(UTC), "Europe/Kyiv")},
    }


@app.post("/{integration}/call-events")
async def call_events(integration: str, body: dict[str, Any]) -> dict[str, Any]:
    event = {
        "event_type": body["eventType"],
        "duration": body.get("duration"),
        "conversation_id": body.get("conversation_id"),
        "provider_call_id": (body.get("metadata") or {}).get("provider_call_id"),
    }
    handle = state["client"].get_workflow_handle(f"{integration}:call:{body['callId']}")
    update_id = f"call-event:{event['provider_call_id']}:{event['conversation_id']}:{event['event_type']}"
    answer: dict[str, Any] = await handle.execute_update("call_event", event, id=update_id)
    return answer


@app.post("/orders/inline")
async def order_inline(body: dict[str, Any]) -> dict[str, Any]:
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    await insert_order({**body, "id": order_id})
    return {"success": True, "orderId": order_id}


@app.post("/orders/durable")
async def order_durable(body: dict[str, Any]) -> dict[str, Any]:
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    await state["client"].execute_workflow(
        BareOrder.run, {**body, "id": order_id}, id=f"bare-{order_id}", task_queue=TASK_QUEUE
    )
    return {"success": True, "orderId": order_id}


@app.post("/calls")
async def start_calls(body: dict[str, Any]) -> dict[str, Any]:
    ids = [f"bare-call-{uuid.uuid4().hex[:16]}" for _ in range(int(body["count"]))]
    client: Client = state["client"]
    await asyncio.gather(*(client.start_workflow(BareCall.run, i, id=i, task_queue=TASK_QUEUE) for i in ids))
    return {"calls": ids}


@app.post("/calls/{call_id}/dialled")
async def call_dialled(call_id: str) -> dict[str, Any]:
    handle = state["client"].get_workflow_handle_for(BareCall.run, call_id)
    return {"success": await handle.execute_update(BareCall.until_dialled)}


@app.post("/calls/{call_id}/events")
async def call_event(call_id: str, body: dict[str, Any]) -> dict[str, Any]:
    handle = state["client"].get_workflow_handle_for(BareCall.run, call_id)
    kind = await handle.execute_update(BareCall.event, body["kind"], id=f"{call_id}:{body['kind']}")
    return {"success": True, "event": kind}


@app.post("/calls/{call_id}/result")
async def call_result(call_id: str) -> dict[str, Any]:
    events = await state["client"].get_workflow_handle_for(BareCall.run, call_id).result()
    return {"success": True, "events": events}
