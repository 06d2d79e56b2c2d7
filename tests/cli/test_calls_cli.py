"""`happ call`, `calls`, `call-status`, `cancel` and `originate` against the stack, as processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from happ_integ.embedded.process import free_port
from simulator.app import DEMO_PHONE
from tests.cli.conftest import HAPP, WEB_UI, Cli, happ
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


async def test_originate_starts_a_batch_from_csv_and_shows_its_progress(cli: Cli, tmp_path: Path) -> None:
    numbers = [phone(9100 + n) for n in range(3)]
    cli.stack.add_leads(numbers)
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "phone_number,name,segment\n"
        f"{numbers[0]},Олена,warm\n"
        ",Nobody,cold\n"  # line 3: no number
        f"{numbers[1]},Петро,hot\n"
        "not-a-number,Typo,cold\n"  # line 5
        f"{numbers[2]},Ірина,warm,extra\n"  # line 6: a cell too many
        f"{numbers[2]},Ірина,warm\n"
        f"{numbers[0]},Олена again,warm\n",  # line 8: the same number as line 2
        encoding="utf-8",
    )
    result = (await cli("originate", "sofa", str(leads), "--interval", "0.3")).ok()
    lines = result.out.splitlines()
    assert lines[3] == "starting 4 calls of sofa from leads.csv …"
    assert "line 3: skipped: no phone_number" in lines
    assert "line 5: skipped: 'not-a-number' is not a phone number" in lines
    assert "line 6: skipped: 4 cells, but the header names 3 columns" in lines
    assert "started 3 calls, 1 number already had a call in flight (watched too)" in lines
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress, result.out
    assert all(
        all(
            label in line
            for label in ("queued", "dialing", "in progress", "completed", "exhausted", "failed", "cancelled")
        )
        for line in progress
    )
    assert progress[-1].startswith("progress: 3/3 ended")
    assert "all 3 calls ended: completed 3 · exhausted 0 · failed 0 · cancelled 0" in lines
    assert lines[-1] == "3 rows skipped (lines 3, 5, 6)"
    assert not any(n in result.out for n in numbers), "numbers are shown masked only"

    rows = await cli.stack.resources.pool.fetch(
        "SELECT phone, status, metadata FROM sofa_calls WHERE phone = ANY($1)", numbers
    )
    by_phone = {r["phone"]: r for r in rows}
    assert by_phone[numbers[1]]["metadata"] == {"name": "Петро", "segment": "hot"}
    assert by_phone[numbers[2]]["metadata"] == {"name": "Ірина", "segment": "warm"}
    assert {r["status"] for r in rows} == {"completed"}

    # The same as a JSON document, from a semicolon-separated file with a BOM.
    more = [phone(9200 + n) for n in range(2)]
    cli.stack.add_leads(more)
    semicolons = tmp_path / "more.csv"
    semicolons.write_text(
        "\ufeffname;phone_number\nA;" + more[0] + "\nB;" + more[1] + "\nC;+1\n", encoding="utf-8"
    )
    document = (await cli("originate", "sofa", str(semicolons), "--json", "--interval", "0.3")).ok().json()
    assert document["all_ended"] is True and document["interrupted"] is False
    assert document["total"] == 2 and document["counts"]["completed"] == 2
    assert [c["line"] for c in document["calls"]] == [2, 3]
    assert all(c["status"] == "completed" and c["created"] for c in document["calls"])
    assert document["skipped"] == [{"line": 4, "error": "'+1' is not a phone number"}]


async def test_originate_ctrl_c_leaves_the_calls_running(cli: Cli, tmp_path: Path) -> None:
    numbers = [phone(9300 + n) for n in range(2)]
    leads = tmp_path / "waiting.csv"
    leads.write_text("phone_number\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    await set_hours(cli, closed_hours())
    try:
        proc = await asyncio.create_subprocess_exec(
            HAPP,
            "originate",
            "sofa",
            str(leads),
            "--interval",
            "0.3",
            env=cli.env,
            cwd=cli.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        seen: list[str] = []
        while not any(line.startswith("progress: ") and "scheduled 2" in line for line in seen):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, seen
            seen.append(line.decode().rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 130, (seen, rest, err)
        [message] = err.decode().splitlines()
        assert message == (
            "happ originate: stopped watching (Ctrl-C): 2 of 2 calls are still running and go on on their "
            "own; follow them with `happ calls sofa`"
        )
        rows = await cli.stack.resources.pool.fetch(
            "SELECT call_id, status FROM sofa_calls WHERE phone = ANY($1)", numbers
        )
        assert {r["status"] for r in rows} == {"scheduled"}, "the calls go on"
        waiting = (await cli("calls", "sofa", "--status", "scheduled", "--json")).ok().json()["calls"]
        assert {r["call_id"] for r in rows} <= {c["call_id"] for c in waiting}
        more = tmp_path / "no-wait.csv"
        more.write_text("phone_number\n" + phone(9310) + "\n", encoding="utf-8")
        quick = (await cli("originate", "sofa", str(more), "--no-wait")).ok().out.splitlines()
        assert quick[-1] == "1 of 1 calls still running: follow them with `happ calls sofa`"
        rows += await cli.stack.resources.pool.fetch(
            "SELECT call_id, status FROM sofa_calls WHERE phone = $1", phone(9310)
        )
        for row in rows:
            (await cli("cancel", "sofa", row["call_id"])).ok()
    finally:
        await set_hours(cli, None)


async def test_originate_refuses_a_file_it_cannot_use(cli: Cli, tmp_path: Path) -> None:
    missing = await cli("originate", "sofa", str(tmp_path / "nope.csv"))
    assert "nope.csv does not exist" in missing.error_line() and missing.out == ""
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("phone,name\n+380994829573,Ivan\n")
    line = (await cli("originate", "sofa", str(wrong))).error_line()
    assert "has no phone_number column (its columns: phone, name)" in line
    bad = tmp_path / "bad.csv"
    bad.write_text("phone_number\nnope\n")
    result = await cli("originate", "sofa", str(bad), "--json")
    assert result.out == ""
    assert "has no row that can be called: all 1 were skipped (line 2: 'nope' is not a phone number)" in (
        result.error_line()
    )


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
