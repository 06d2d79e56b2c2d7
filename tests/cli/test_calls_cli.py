"""`happ call`, `calls`, `call-status` and `cancel` against the stack, as processes (`happ originate`,
an alias of `happ campaign create --watch`: tests/cli/test_campaign_cli.py)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from happ_integ.embedded.process import free_port
from simulator.app import DEMO_PHONE
from tests.cli.conftest import WEB_UI, Cli, happ
from tests.e2e.call_stack import phone

pytestmark = pytest.mark.timeout(300)

DEMO_MASKED = "+38099*****73"
FINAL = {"completed", "exhausted", "failed", "cancelled"}


async def until_status(cli: Cli, call_id: str, statuses: set[str], seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        state = (await cli("call-status", "sofa", call_id, "--json")).ok().json()
        if state["status"] in statuses:
            return state
        assert time.monotonic() < deadline, (state, cli.stack.worker_logs())
        await asyncio.sleep(0.5)


def closed_hours() -> dict[str, Any]:
    """Calling hours that exclude today (UTC), so a new call waits, `scheduled`, for another day."""
    today = datetime.now(UTC).isoweekday()
    return {
        "timezone": "UTC",
        "start": "00:00",
        "end": "23:59",
        "weekdays": [d for d in range(1, 8) if d != today],
    }


async def set_hours(cli: Cli, hours: dict[str, Any] | None) -> None:
    value = json.dumps({"calling_hours": hours})
    stored = (await cli("config", "set", "sofa", "call_handling", value, "--merge", "--json")).ok()
    assert stored.json()["value"]["calling_hours"] == hours


async def test_call_runs_a_whole_call_and_call_status_shows_it(cli: Cli) -> None:
    started = (
        (await cli("call", "sofa", DEMO_PHONE, "--metadata", '{"campaign": "cli"}', "--json")).ok().json()
    )
    call_id = started["call_id"]
    assert started["created"] is True and started["phone_masked"] == DEMO_MASKED
    assert started["workflow_id"] == f"sofa:call:{call_id}"
    assert started["web_ui"] == f"{WEB_UI}/namespaces/default/workflows/sofa:call:{call_id}"
    assert DEMO_PHONE not in json.dumps(started)

    state = await until_status(cli, call_id, FINAL)
    assert state["status"] == "completed", state
    assert state["variables"]["client_name"] == "Іван Петренко"
    assert len(state["attempts"]) == 1 and state["attempts"][0]["outcome"] == "answered"
    assert state["web_ui"] == started["web_ui"]
    row = await cli.stack.resources.pool.fetchrow(
        "SELECT metadata FROM sofa_calls WHERE call_id = $1", call_id
    )
    assert row["metadata"] == {"campaign": "cli"}

    text = (await cli("call-status", "sofa", call_id)).ok().out
    assert f"call {call_id} (sofa)" in text and "completed" in text and DEMO_MASKED in text
    assert f"Web UI       {started['web_ui']}" in text
    assert "attempts:" in text and "answered" in text
    assert DEMO_PHONE not in text

    listed = (await cli("calls", "sofa")).ok().out.splitlines()
    assert listed[0].split() == ["CALL", "ID", "STATUS", "ATTEMPT", "PHONE", "UPDATED"]
    [line] = [line for line in listed if line.startswith(call_id)]
    assert line.split()[:4] == [call_id, "completed", "1", DEMO_MASKED]
    assert DEMO_PHONE not in "\n".join(listed)

    page = (await cli("calls", "sofa", "--status", "completed", "--limit", "1", "--json")).ok().json()
    assert page["integration"] == "sofa" and len(page["calls"]) == 1
    assert page["calls"][0]["status"] == "completed"
    assert page["next_cursor"] is None or isinstance(page["next_cursor"], str)

    text = (await cli("call", "sofa", "099 482 95 73")).ok().out
    assert text.startswith("call c_") and f"calls {DEMO_MASKED}" in text
    assert f"{WEB_UI}/namespaces/default/workflows/sofa:call:c_" in text
    second = text.split()[1]
    assert (await until_status(cli, second, FINAL))["status"] == "completed"

    first = (await cli("calls", "sofa", "--limit", "1", "--json")).ok().json()
    assert first["next_cursor"], "more calls than one"
    following = (
        (await cli("calls", "sofa", "--limit", "1", "--cursor", first["next_cursor"], "--json")).ok().json()
    )
    assert following["calls"][0]["call_id"] != first["calls"][0]["call_id"]
    hint = (await cli("calls", "sofa", "--limit", "1")).ok().out.splitlines()[-1]
    assert hint == f"(more: happ calls sofa --cursor {first['next_cursor']})"


async def test_cancel_stops_a_call_waiting_for_its_calling_hours(cli: Cli) -> None:
    await set_hours(cli, closed_hours())
    try:
        started = (await cli("call", "sofa", phone(9001), "--json")).ok().json()
        call_id = started["call_id"]
        assert (await until_status(cli, call_id, {"scheduled"}))["next_attempt_at"]
        again = (await cli("call", "sofa", phone(9001), "--json")).ok().json()
        assert again["call_id"] == call_id and again["created"] is False
        text = (await cli("call", "sofa", phone(9001))).ok().out
        assert text.startswith(f"+38099*****01 already has a call in flight: {call_id}")

        cancelled = (await cli("cancel", "sofa", call_id, "--json")).ok().json()
        assert cancelled["call_id"] == call_id and cancelled["status"] == "cancelled"
        assert cancelled["web_ui"].endswith(f"/workflows/sofa:call:{call_id}")
        assert (await cli("call-status", "sofa", call_id, "--json")).ok().json()["status"] == "cancelled"

        ended = await cli("cancel", "sofa", call_id)
        assert ended.out == ""
        assert "has already ended" in ended.error_line()
    finally:
        await set_hours(cli, None)


async def test_errors_are_one_line_that_names_the_fix(cli: Cli) -> None:
    base = cli.stack.base
    down = f"http://127.0.0.1:{free_port()}"
    no_temporal = f"127.0.0.1:{free_port()}"
    no_postgres = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    runs = {
        "unknown": cli("call", "nosuch", DEMO_PHONE),
        "unknown over the API": cli("calls", "nosuch"),
        "no call flow": cli("call", "example", DEMO_PHONE),
        "API down: calls": cli("calls", "sofa", HAPP_API_URL=down),
        "API down: call-status": cli("call-status", "sofa", "c_1", HAPP_API_URL=down),
        "API down: secrets list": cli("secrets", "list", "sofa", HAPP_API_URL=down),
        "API down: --api-url": cli("calls", "sofa", "--api-url", down),
        "wrong token": cli("calls", "sofa", HAPP_ADMIN_TOKEN="wrong-token-" + "x" * 32),
        "no token": happ(*("calls", "sofa"), env=cli.without("HAPP_ADMIN_TOKEN"), cwd=cli.cwd),
        "Temporal down": cli("call", "sofa", DEMO_PHONE, TEMPORAL_ADDRESS=no_temporal),
        "PostgreSQL down": cli("call", "sofa", DEMO_PHONE, DATABASE_URL=no_postgres),
        "no database": happ("call", "sofa", DEMO_PHONE, env=cli.without("DATABASE_URL"), cwd=cli.cwd),
        "no such call": cli("call-status", "sofa", "c_nope"),
        "bad number": cli("call", "sofa", "12"),
        "bad metadata": cli("call", "sofa", DEMO_PHONE, "--metadata", "[1]"),
        "usage": cli("calls"),
        "bad call id": cli("call-status", "sofa", "../x"),
        "bad limit": cli("calls", "sofa", "--limit", "9999"),
    }
    results = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
    lines = {what: result.error_line() for what, result in results.items()}
    assert all(result.out == "" for result in results.values())

    assert lines["unknown"].startswith("happ call: no integration 'nosuch': there are ")
    assert all(name in lines["unknown"] for name in ("example", "keycrm", "sofa"))
    assert lines["unknown over the API"] == (
        f"happ calls: the API at {base} serves no integration 'nosuch': it serves sofa"
    )
    assert "integration 'example' has no call flow" in lines["no call flow"]
    assert "keycrm, sofa" in lines["no call flow"]
    for what in ("API down: calls", "API down: call-status", "API down: secrets list", "API down: --api-url"):
        line = lines[what]
        assert f"cannot reach the API at {down}" in line and "`happ api`" in line and "`make dev`" in line
    assert f"the API at {base} refused the admin token" in lines["wrong token"]
    assert "set HAPP_ADMIN_TOKEN" in lines["wrong token"]
    assert "HAPP_ADMIN_TOKEN is not set" in lines["no token"]
    assert lines["Temporal down"].startswith(f"happ call: cannot reach Temporal at {no_temporal}")
    assert "TEMPORAL_ADDRESS" in lines["Temporal down"]
    assert lines["PostgreSQL down"].startswith(
        "happ call: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:"
    )
    assert "DATABASE_URL" in lines["PostgreSQL down"]
    assert "DATABASE_URL is not set" in lines["no database"]
    assert (
        lines["no such call"] == "happ call-status: no call 'c_nope': list the calls with `happ calls sofa`"
    )
    assert lines["bad number"] == "happ call: '12' is not a valid phone number"
    assert "--metadata must be a JSON object" in lines["bad metadata"]
    assert results["usage"].code == 2
    assert "the following arguments are required: integration" in lines["usage"]
    assert "is not a call id" in lines["bad call id"]
    assert "out of range" in lines["bad limit"]
