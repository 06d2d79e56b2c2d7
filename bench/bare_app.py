"""The baselines' server: FastAPI + uvicorn and a plain Temporal client, with nothing of happ's.

Each route does by hand the least that the happ route it is compared with must do, so the ratio
is what the framework adds (validation, auth, routing, lookups, logging, error mapping):

- `POST /agent-init`: the same JSON agent-init answers for a call in flight;
- `POST /{integration}/call-events`: the call's `call_event` Update, sent with a plain client, its answer returned;
- `POST /orders/inline`: the order INSERT over asyncpg;
- `POST /orders/durable`: a minimal workflow (one local activity doing the same INSERT) run and
  awaited, on a worker in this process (task queue `bare`).

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
from temporalio.worker import Worker

from happ_integ.calls.clock import spoken_date

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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bare_orders (id text PRIMARY KEY, phone text, product_id text, quantity int)"
    )
    state["pool"] = pool
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    state["client"] = client
    worker = Worker(client, task_queue=TASK_QUEUE, workflows=[BareOrder], activities=[insert_order])
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
