"""Durable runs of different handlers at once: each run imports its handler into its own sandbox,
on the worker's threads, and none may wait on another's import."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.e2e.conftest import PHONE, Stack


async def test_sixty_concurrent_runs_of_three_durable_handlers_all_answer(stack: Stack) -> None:
    async def post(i: int) -> tuple[int, float, dict[str, object]]:
        kind = i % 3
        if kind == 0:
            path, body = (
                "/example/webhook/create-order",
                {"phone": PHONE, "product_id": f"p-{i}", "quantity": 1},
            )
        elif kind == 1:
            path, body = "/example/webhook/retry", {}
        else:
            path, body = "/example/webhook/nethunt", {"recordId": stack.record_id, "phone": PHONE}
        started = time.monotonic()
        # A key of its own per request, so every request is a run of its own.
        resp = await stack.http.post(
            path, json=body, headers={**stack.hook, "Idempotency-Key": uuid.uuid4().hex}
        )
        return resp.status_code, time.monotonic() - started, resp.json()

    results = await asyncio.gather(*(post(i) for i in range(60)))
    statuses = [status for status, _, _ in results]
    assert statuses == [200] * 60, statuses
    for i, (_, _, body) in enumerate(results):
        assert body["success"] is True, body
        if i % 3 == 0:
            assert str(body["orderId"]).startswith("ord_")
        if i % 3 == 2:
            assert str(body["callId"]).startswith("call_")
    slowest = max(elapsed for _, elapsed, _ in results)
    assert slowest < 15, f"the slowest of 60 concurrent runs took {slowest:.1f}s"
