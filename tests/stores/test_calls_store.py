"""The calls table as a call's status changes write it: ids and results kept when a change does
not carry them, the reason always the call's current one."""

from __future__ import annotations

import asyncpg

from happ_integ.calls.contracts import CallRecord
from happ_integ.calls.models import CallStatus
from happ_integ.stores.calls import CALL_FLOW_MIGRATIONS, CallStore
from happ_integ.stores.migrations import apply_migrations

CAP = "1 attempt in 24 h (contact_policy.max_attempts_per_day: 1)"


async def test_a_cleared_reason_leaves_the_row_and_ids_stay(pool: asyncpg.Pool, name: str) -> None:
    await apply_migrations(pool, name, CALL_FLOW_MIGRATIONS)
    calls = CallStore(pool, name)
    await calls.claim("c_1", "+380991234567", "wf-1", {})

    def change(status: CallStatus, **fields: object) -> CallRecord:
        return CallRecord(integration=name, call_id="c_1", status=status, **fields)  # type: ignore[arg-type]

    await calls.record(change(CallStatus.SCHEDULED, reason=CAP))
    assert (await calls.get("c_1") or {})["reason"] == CAP
    # The cap let the call through: the call's reason is gone, and so is the row's.
    await calls.record(change(CallStatus.DIALING, attempt=1, provider_call_id="va-1", result={"ok": True}))
    dialling = await calls.get("c_1") or {}
    assert dialling["reason"] is None and dialling["provider_call_id"] == "va-1"
    await calls.record(change(CallStatus.COMPLETED, attempt=1))
    done = await calls.get("c_1") or {}
    assert done["status"] == "completed" and done["reason"] is None
    assert done["provider_call_id"] == "va-1" and done["result"] == {"ok": True}  # kept when not given
