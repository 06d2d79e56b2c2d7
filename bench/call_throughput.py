"""Call throughput: complete call lifecycles per second (originate → events → post-call →
analysis → CRM update), against a hand-written workflow with the same steps and none of the logic.

happ: a batch of calls through `happ api`'s call-originate; the worker (`happ worker`) looks each
lead up in the simulated NetHunt and dials the simulated voice assistant; as soon as a call is
dialled, its call_start, call_end and signed post-call transcription go to the gateway; the call
ends with the ElevenLabs analysis and three CRM writes. A round ends when every call's row says
completed.
bare (bench.bare_app): the same number of calls start `BareCall`, which takes as many local
activities, activities, child runs (with their activities), Updates and queue signals as an
`OutboundCall` (each a no-op); each gets the same three events over HTTP. A round ends when every
run has returned. Its events go once it has dialled, as happ's do (an Update that answers then).
Both are driven from this process with at most 32 requests in flight. Target: happ ≥ 0.8× bare.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.harness import Benchmark, call_bench_stack, cpu_seconds, spread
from bench.webhook_load import deliveries_for
from happ_integ.temporal import connect_settings

CALLS = 40
ROUNDS = 3
CONCURRENCY = 32
TARGET = 0.8
CPU_TARGET_MS = 100
EVENTS = ("call_start", "call_end", "post_call_transcription")
PATHS = {"call_start": "call-events", "call_end": "call-events", "post_call_transcription": "agent-postcall"}


async def run() -> Benchmark:
    from tests.e2e.call_stack import phone

    handling = {"concurrency_limit": CALLS, "ring_timeout_seconds": 600, "max_call_seconds": 3600}
    with tempfile.TemporaryDirectory() as folder:
        async with call_bench_stack(Path(folder), handling) as (calls, api, bare):
            limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
            gate = asyncio.Semaphore(CONCURRENCY)
            async with httpx.AsyncClient(limits=limits, timeout=300) as http:

                async def send(url: str, **kwargs: Any) -> httpx.Response:
                    async with gate:
                        resp = await http.post(url, **kwargs)
                    assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
                    return resp

                numbers = iter(phone(50_000 + n) for n in range(100_000))

                worker = calls.workers[0].proc.pid
                worker_cpu: list[float] = []

                async def happ_round() -> float:
                    batch = [next(numbers) for _ in range(CALLS)]
                    calls.add_leads(batch)
                    cpu = cpu_seconds(worker)
                    began = time.perf_counter()
                    resp = await send(
                        f"{api}/sofa/webhook/call-originate",
                        json={"calls": [{"phone_number": n} for n in batch]},
                        headers=calls.hook,
                    )
                    call_ids = [c["callId"] for c in resp.json()["calls"]]

                    async def lifecycle(call_id: str) -> None:
                        def dialled_calls() -> list[Any]:
                            return [c for c in calls.sims.voice.calls if c.call_id == call_id]

                        await calls.until(lambda: bool(dialled_calls()), seconds=300)
                        dialled = dialled_calls()
                        [plan] = deliveries_for(dialled, calls.sims.voice, duplicates=0, bad_signatures=0)
                        for delivery in plan:
                            if delivery.kind in EVENTS:
                                await send(
                                    f"{api}/sofa/webhook/{PATHS[delivery.kind]}",
                                    content=delivery.body,
                                    headers=delivery.headers,
                                )

                    await asyncio.gather(*(lifecycle(i) for i in call_ids))
                    await calls.until_all(call_ids, {"completed"}, seconds=300)
                    rate = CALLS / (time.perf_counter() - began)
                    worker_cpu.append((cpu_seconds(worker) - cpu) * 1000 / CALLS)
                    return rate

                async def bare_round() -> float:
                    began = time.perf_counter()
                    ids = (await send(f"{bare}/calls", json={"count": CALLS})).json()["calls"]

                    async def lifecycle(call_id: str) -> None:
                        await send(f"{bare}/calls/{call_id}/dialled")  # as happ's waits for the dial
                        for kind in EVENTS:
                            await send(f"{bare}/calls/{call_id}/events", json={"kind": kind})
                        await send(f"{bare}/calls/{call_id}/result")

                    await asyncio.gather(*(lifecycle(i) for i in ids))
                    return CALLS / (time.perf_counter() - began)

                await happ_round()  # warm-up: imports, connections, the queue workflows started
                await bare_round()
                happ: list[float] = []
                base: list[float] = []
                for _ in range(ROUNDS):
                    base.append(await bare_round())
                    happ.append(await happ_round())
                client = await connect_settings(calls.settings)
                last_happ = await calls.resources.pool.fetchval(
                    "SELECT workflow_id FROM sofa_calls ORDER BY created_at DESC LIMIT 1"
                )
                last_bare = (await send(f"{bare}/calls", json={"count": 1})).json()["calls"][0]
                await send(f"{bare}/calls/{last_bare}/dialled")
                for kind in EVENTS:
                    await send(f"{bare}/calls/{last_bare}/events", json={"kind": kind})
                await send(f"{bare}/calls/{last_bare}/result")
                tasks = {"happ": await _tasks(client, last_happ), "bare": await _tasks(client, last_bare)}
    ratios = spread([h / b for h, b in zip(happ, base, strict=True)])
    cpu = spread(worker_cpu[1:])
    return Benchmark(
        f"Call throughput ({CALLS} calls a round, whole lifecycles)",
        f"≥ {TARGET}× bare, worker CPU ≤ {CPU_TARGET_MS} ms a call",
        ratios.median >= TARGET and cpu.median <= CPU_TARGET_MS,
        f"happ {spread(happ).text(' calls/s', 1)}; bare {spread(base).text(' calls/s', 1)}; "
        f"ratio {ratios.text('×', 2)} ({'met' if ratios.median >= TARGET else 'NOT MET'}); "
        f"the worker's CPU a call {cpu.text(' ms')} ({'met' if cpu.median <= CPU_TARGET_MS else 'NOT MET'}); "
        f"workflow tasks a call (with its child runs): happ {tasks['happ']}, bare {tasks['bare']}",
        {
            "workflow_tasks_per_call": tasks,
            "worker_cpu_ms_per_call": spread(worker_cpu[1:]).as_dict(),
            "happ_calls_per_second": spread(happ).as_dict(),
            "bare_calls_per_second": spread(base).as_dict(),
            "ratio": ratios.as_dict(),
        },
    )


async def _tasks(client: Client, workflow_id: str) -> int:
    """Workflow tasks completed by a run and its child runs: the round trips its history holds."""
    count = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            count += 1
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            count += await _tasks(
                client, event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            )
    return count


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
