"""One worker process for tests/ops/test_keycrm_rate_limit.py: its own Resources (pool, HTTP client)
making keycrm.* operations with the integration's API key, as a worker's activities would.

    python -m tests.ops.keycrm_worker INTEGRATION TASKS REQUESTS PER_MINUTE PHONE CARD_ID
    (DATABASE_URL, HAPP_SECRET_KEY, HAPP_KEYCRM_API_URL in the environment)

It prints "ready" once its pool is open, waits for a line on stdin (so the workers start
together), runs TASKS concurrent tasks of REQUESTS operations each (keycrm.find_buyers and
keycrm.get_card in turn), then prints one JSON line: what each operation answered and how many
times it was tried. An operation that fails with a retryable error is tried again after its
`retry_after` (1 s without one), as Temporal does with the activity's `next_retry_delay`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from happ_integ.errors import HappError
from happ_integ.integration import Integration
from happ_integ.ops import Operation, Resources, keycrm
from happ_integ.ops import models as m
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings

MAX_TRIES = 12


async def _like_an_activity(resources: Resources, op: Operation[Any, Any], arg: Any) -> dict[str, Any]:
    for tried in range(1, MAX_TRIES + 1):
        try:
            answer = await op.impl(resources, arg)
        except HappError as exc:
            if not exc.retryable or tried == MAX_TRIES:
                return {"op": op.name, "tries": tried, "error": exc.message}
            retry_after = exc.details.get("retry_after")
            await asyncio.sleep(float(retry_after) if isinstance(retry_after, int | float) else 1.0)
            continue
        return {"op": op.name, "tries": tried, "answer": answer.model_dump(mode="json")}
    raise AssertionError("unreachable")


async def main(integration: str, tasks: int, requests: int, per_minute: int, phone: str, card: int) -> None:
    resources = await open_resources(
        Settings(_env_file=None),  # type: ignore[call-arg]  # the environment only, no .env
        {integration: Integration(integration, secrets=["KEYCRM_API_KEY"])},
        max_pool=4,
    )
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def task() -> list[dict[str, Any]]:
            done = []
            for i in range(requests):
                if i % 2 == 0:
                    find = m.KeyCrmFindBuyers(integration=integration, phone=phone, per_minute=per_minute)
                    done.append(await _like_an_activity(resources, keycrm.find_buyers, find))
                else:
                    get = m.KeyCrmGetCard(integration=integration, card_id=card, per_minute=per_minute)
                    done.append(await _like_an_activity(resources, keycrm.get_card, get))
            return done

        results = await asyncio.gather(*(task() for _ in range(tasks)))
        print(json.dumps([item for done in results for item in done]), flush=True)
    finally:
        await close_resources(resources)


if __name__ == "__main__":
    name, tasks, requests, per_minute, phone, card = sys.argv[1:7]
    asyncio.run(main(name, int(tasks), int(requests), int(per_minute), phone, int(card)))
