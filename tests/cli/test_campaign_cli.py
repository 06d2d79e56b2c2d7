"""`happ campaign …` and `happ originate`: the CSV reading as a pure function, the live display,
and every command as a process against the stack (the gateway over HTTP, Temporal, a worker, the
simulated peers), through a recording proxy that keeps each request the CLI sent."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from happ_integ.calls.phones import mask_phone
from happ_integ.cli import main
from happ_integ.cli.campaign_watch import (
    RECIPIENT_STATUSES,
    WATCH_FAILURES,
    LiveDisplay,
    display,
    final_count,
    follow,
    progress_line,
    progress_view,
)
from happ_integ.cli.common import CliError
from happ_integ.cli.leads import parse_leads, read_leads, rejected_rows
from happ_integ.cli.originate import default_name
from happ_integ.embedded.process import free_port
from tests.cli.conftest import HAPP, Cli, Result
from tests.e2e.call_stack import ADMIN, phone
from tests.e2e.conftest import serve

pytestmark = pytest.mark.timeout(300)
CAMPAIGN_ID = re.compile(r"campaign (cmp_[0-9a-f]{20}) created")


# The file, as a pure function ------------------------------------------------------------------


def test_columns_become_the_number_the_id_variables_and_metadata() -> None:
    leads = parse_leads(
        "phone_number,id,var.webinar,var.city,name,segment,\n"
        "+380994829573,lead-1,12 Dec,Kyiv,Олена,warm,\n"
        " +380994829574 ,, ,Lviv,Петро,,\n"  # empty and blank cells are left out
        "\n"  # a blank line: skipped, not reported
        '+380994829575,lead-3,"two\nlines",,,,\n'  # a quoted cell over two lines
        "+380994829576,lead-4,,,,,\n"
    )
    assert [row.line for row in leads.rows] == [2, 3, 5, 7]
    assert leads.recipients() == [
        {
            "phone_number": "+380994829573",
            "id": "lead-1",
            "variables": {"webinar": "12 Dec", "city": "Kyiv"},
            "metadata": {"name": "Олена", "segment": "warm"},
        },
        {"phone_number": "+380994829574", "variables": {"city": "Lviv"}, "metadata": {"name": "Петро"}},
        {"phone_number": "+380994829575", "id": "lead-3", "variables": {"webinar": "two\nlines"}},
        {"phone_number": "+380994829576", "id": "lead-4"},
    ]
    assert leads.skipped == []


def test_a_semicolon_file_with_a_bom_and_rows_that_cannot_be_sent() -> None:
    leads = parse_leads(
        "\ufeffname;phone_number;id\n"
        "A;+380994829573;a\n"
        "B;;b\n"  # line 3: no number
        "C;+380994829574;c;extra\n"  # line 4: a cell more than the header
        "D;+380994829575;d;\n"  # an empty extra cell is fine
        f"E;{'9' * 65};e\n"  # line 6: longer than any number
        f"F;+380994829576;{'x' * 129}\n"  # line 7: an id longer than the API takes
    )
    assert [(row.line, row.recipient["id"]) for row in leads.rows] == [(2, "a"), (5, "d")]
    assert leads.rows[0].recipient == {"phone_number": "+380994829573", "id": "a", "metadata": {"name": "A"}}
    assert [(s.line, s.id, s.error) for s in leads.skipped] == [
        (3, "b", "no phone_number"),
        (4, None, "4 cells, but the header names 3 columns"),
        (6, "e", "phone_number is not a valid phone number"),
        (7, None, "id: use 1 to 128 letters, digits or _.:@+-"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "leads.csv is empty"),
        ("phone,name\n+380994829573,Ivan\n", "has no phone_number column (its columns: phone, name)"),
        ("phone_number,name,name\n", "names the column 'name' twice"),
        ("phone_number,var.\n", "a column 'var.' without a variable name"),
        ("phone_number," + ",".join(f"m{i}" for i in range(101)) + "\n", "101 metadata columns"),
    ],
)
def test_a_header_the_api_cannot_take_is_refused(text: str, message: str) -> None:
    with pytest.raises(CliError) as refused:
        parse_leads(text, "leads.csv")
    assert message in refused.value.message


def test_a_file_of_more_than_one_request_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("phone_number\n" + "".join(f"{phone(n)}\n" for n in range(10_001)))
    with pytest.raises(CliError) as refused:
        read_leads(path)
    assert "10,001 recipients, more than the 10,000 one request takes; nothing was sent" in (
        refused.value.message
    )
    assert "split the file" in refused.value.message and "`happ campaign append" in refused.value.message
    path.write_text("phone_number\n" + "".join(f"{phone(n)}\n" for n in range(10_000)))
    assert len(read_leads(path).rows) == 10_000


def test_rejected_rows_are_named_by_their_line() -> None:
    leads = parse_leads("phone_number,id\n+380994829573,a\n,b\n12,c\n+380994829573,a\n")
    answer = {
        "accepted": 1,
        "rejected": [
            {"index": 1, "id": "c", "error": "phone_number is not a valid phone number"},
            {"index": 2, "id": "a", "error": "this id is already in the campaign"},
        ],
    }
    assert [(r.line, r.id, r.index, r.error) for r in rejected_rows(leads, answer)] == [
        (3, "b", None, "no phone_number"),
        (4, "c", 1, "phone_number is not a valid phone number"),
        (5, "a", 2, "this id is already in the campaign"),
    ]


def test_the_default_name_is_the_file_and_the_time() -> None:
    assert default_name("/data/leads.csv", datetime(2025, 12, 12, 10, 5)) == "leads 2025-12-12 10:05"
    assert len(default_name("x" * 300 + ".csv")) == 200


@pytest.mark.parametrize(
    "command",
    [
        ("campaign",),
        *[
            ("campaign", a)
            for a in (
                "create",
                "append",
                "list",
                "status",
                "watch",
                "pause",
                "resume",
                "cancel",
                "retry",
                "report",
            )
        ],
        ("originate",),
    ],
    ids=" ".join,
)
def test_every_campaign_command_has_help(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"usage: happ {' '.join(command)}")


# The display -------------------------------------------------------------------------------------


def view(status: str = "running", **counts: int) -> dict[str, Any]:
    full = {s: 0 for s in RECIPIENT_STATUSES} | counts
    return {
        "campaign_id": "cmp_1",
        "name": "Webinar 12 Dec",
        "status": status,
        "cancel_requested": False,
        "counts": full,
        "outcomes": {"interested": 2, "no_conversation": 1} if counts.get("completed") else {},
        "total": sum(full.values()),
    }


def test_progress_counts_final_recipients_against_all() -> None:
    running = view(pending=5, dialing=2, completed=3, failed=1, expired=1)
    assert final_count(running) == 5
    assert progress_line(running) == (
        "progress: 5/12 final · running · by status: pending 5 · dialing 2 · completed 3 · failed 1 · "
        "expired 1 · by outcome: interested 2 · no_conversation 1"
    )
    assert progress_line({**view(pending=1), "cancel_requested": True}) == (
        "progress: 0/1 final · running, cancel requested · by status: pending 1"
    )
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(progress_view(running))
    drawn = console.file.getvalue()  # type: ignore[attr-defined]
    assert "campaign cmp_1  Webinar 12 Dec  running" in drawn
    assert "━" in drawn and "5/12 final (41%)" in drawn
    assert re.search(r"STATUS\s+COUNT", drawn) and re.search(r"pending\s+5", drawn)
    assert re.search(r"OUTCOME\s+COUNT", drawn) and re.search(r"interested\s+2", drawn)


class FakeApi:
    def __init__(self, *answers: dict[str, Any] | CliError) -> None:
        self.answers = list(answers)
        self.asked = 0

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, CliError):
            raise answer
        return answer


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_watch_ends_when_the_campaign_has_and_waits_out_a_failed_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = CliError("cannot reach the API")
    api = FakeApi(view(pending=2), down, view(dialing=1, completed=1), view("finished", completed=2))
    shown: list[str] = []

    class Lines:
        def update(self, v: Any) -> None:
            shown.append(progress_line(v))

    last = follow(api, "cmp_1", 1.0, Lines(), sleep=lambda _: None)  # type: ignore[arg-type]
    assert last["status"] == "finished" and api.asked == 4
    assert [line.split(" · ")[0] for line in shown] == [
        "progress: 0/2 final",
        "progress: 0/2 final",  # the poll that failed: the last view stays
        "progress: 1/2 final",
        "progress: 2/2 final",
    ]

    failing = FakeApi(view(pending=1), *([down] * WATCH_FAILURES))
    with pytest.raises(CliError):
        follow(failing, "cmp_1", 1.0, Lines(), sleep=lambda _: None)  # type: ignore[arg-type]

    # On a terminal: rich's live bar, drawn in place.
    terminal = Tty()
    monkeypatch.setattr("sys.stdout", terminal)
    with display(False) as live:
        assert isinstance(live, LiveDisplay)
        follow(FakeApi(view("finished", completed=3)), "cmp_1", 1.0, live, sleep=lambda _: None)  # type: ignore[arg-type]
    assert "3/3 final (100%)" in terminal.getvalue() and "\x1b[" in terminal.getvalue()


# Against the stack, through a recording proxy --------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    """A real HTTP server in front of the gateway: it keeps each request and forwards it, or answers
    with what `fail` names for its method and path."""

    target: str
    base: str = ""
    seen: list[Seen] = field(default_factory=list)
    fail: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(Seen(request.method, request.url.path, request.url.query, headers, body))
        response: Response
        if (request.method, request.url.path) in self.fail:
            status, document = self.fail[(request.method, request.url.path)]
            response = JSONResponse(document, status)
        else:
            upstream = await self.client.request(
                request.method,
                f"{self.target}{request.url.path}",
                params=request.url.query or None,
                content=body,
                headers={k: v for k, v in headers.items() if k not in ("host", "content-length")},
            )
            keep = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection")
            }
            response = Response(upstream.content, upstream.status_code, headers=keep)
        await response(scope, receive, send)

    def to(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


@pytest.fixture
async def api(cli: Cli) -> AsyncIterator[Recorder]:
    recorder = Recorder(cli.stack.base)
    server, task = await serve(recorder, free_port())
    recorder.base = f"http://127.0.0.1:{server.config.port}"
    try:
        yield recorder
    finally:
        server.should_exit = True
        await task
        await recorder.client.aclose()


async def happ(cli: Cli, api: Recorder, *args: str, timeout: float = 120) -> Result:
    return await cli(*args, timeout=timeout, HAPP_API_URL=api.base)


def created_id(result: Result) -> str:
    found = CAMPAIGN_ID.search(result.out)
    assert found, result.out
    return found.group(1)


async def recipients(cli: Cli, campaign_id: str) -> dict[str, dict[str, Any]]:
    answer = await cli.stack.http.get(
        f"/sofa/campaigns/{campaign_id}/recipients", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert answer.status_code == 200, answer.text
    return {r["recipient_id"]: r for r in answer.json()["recipients"]}


async def until_campaign(
    cli: Cli, api: Recorder, campaign_id: str, statuses: set[str], seconds: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        state = (await happ(cli, api, "campaign", "status", "sofa", campaign_id, "--json")).ok().json()
        if state["status"] in statuses:
            return state  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, (state, cli.stack.worker_logs())
        await asyncio.sleep(0.3)


async def set_hours(cli: Cli, hours: dict[str, Any] | None) -> None:
    value = json.dumps({"calling_hours": hours})
    (await cli("config", "set", "sofa", "call_handling", value, "--merge", "--json")).ok()


def closed_today() -> dict[str, Any]:
    today = datetime.now(UTC).isoweekday()
    return {
        "timezone": "UTC",
        "start": "00:00",
        "end": "23:59",
        "weekdays": [d for d in range(1, 8) if d != today],
    }


async def test_create_sends_the_file_shows_rejected_lines_and_watches_to_the_end(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    numbers = [phone(7000 + n) for n in range(3)]
    cli.stack.add_leads(numbers)
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "phone_number,id,var.webinar,name,segment\n"
        f"{numbers[0]},lead-0,12 Dec,Олена,warm\n"
        ",lead-x,12 Dec,Nobody,cold\n"  # line 3: no number, not sent
        f"{numbers[1]},lead-1,,Петро,\n"  # empty cells left out
        "not-a-number,lead-bad,12 Dec,Typo,cold\n"  # line 5: the API rejects it
        "\n"
        f"{numbers[2]},,12 Dec,Ірина,hot\n"  # line 7: no id, so the number is its id
        f"{numbers[0]},lead-0,12 Dec,Again,warm\n",  # line 8: a repeated id
        encoding="utf-8",
    )
    args = ("campaign", "create", "sofa", str(leads), "--name", "Webinar 12 Dec", "--max-concurrency", "2")
    result = (
        await happ(
            cli,
            api,
            *args,
            "--max-attempts",
            "2",
            "--idempotency-key",
            "webinar-7000",
            "--watch",
            "--interval",
            "0.3",
        )
    ).ok()
    campaign_id = created_id(result)
    lines = result.out.splitlines()
    assert lines[:4] == [
        f"campaign {campaign_id} created: 'Webinar 12 Dec' on sofa, 3 recipients accepted, 3 rejected",
        "  line 3, id lead-x: no phone_number",
        "  line 5, id lead-bad: phone_number is not a valid phone number",
        "  line 8, id lead-0: this id is already in the campaign",
    ]
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress and all(" final · " in line and "by status: " in line for line in progress)
    assert progress[-1].startswith("progress: 3/3 final · finished · by status: completed 3")
    assert lines[-2].startswith(
        f"campaign {campaign_id} finished: 3 recipients · completed 3 · exhausted 0 · failed 0 · "
        "cancelled 0 · expired 0 · suppressed 0"
    )
    assert lines[-1] == f"  report   happ campaign report sofa {campaign_id} -o report.csv"
    assert not any(n in result.out for n in numbers), "numbers are never shown"

    [sent] = api.to("POST", "/sofa/campaigns")
    assert sent.headers["authorization"] == f"Bearer {ADMIN}"
    assert sent.headers["idempotency-key"] == "webinar-7000"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "name": "Webinar 12 Dec",
        "max_concurrency": 2,
        "max_attempts": 2,
        "recipients": [
            {
                "phone_number": numbers[0],
                "id": "lead-0",
                "variables": {"webinar": "12 Dec"},
                "metadata": {"name": "Олена", "segment": "warm"},
            },
            {"phone_number": numbers[1], "id": "lead-1", "metadata": {"name": "Петро"}},
            {
                "phone_number": "not-a-number",
                "id": "lead-bad",
                "variables": {"webinar": "12 Dec"},
                "metadata": {"name": "Typo", "segment": "cold"},
            },
            {
                "phone_number": numbers[2],
                "variables": {"webinar": "12 Dec"},
                "metadata": {"name": "Ірина", "segment": "hot"},
            },
            {
                "phone_number": numbers[0],
                "id": "lead-0",
                "variables": {"webinar": "12 Dec"},
                "metadata": {"name": "Again", "segment": "warm"},
            },
        ],
    }
    polls = api.to("GET", f"/sofa/campaigns/{campaign_id}")
    assert polls and all(p.headers["authorization"] == f"Bearer {ADMIN}" for p in polls)
    stored = await recipients(cli, campaign_id)
    assert set(stored) == {
        "lead-0",
        "lead-1",
        mask_phone(numbers[2]),
    }  # an id taken from the number is masked
    assert stored["lead-0"]["variables"] == {"webinar": "12 Dec"}
    assert stored["lead-1"]["variables"] == {} and stored["lead-1"]["metadata"] == {"name": "Петро"}
    assert {r["status"] for r in stored.values()} == {"completed"}

    # The same key and file again: the same campaign, nothing new.
    again = (
        (await happ(cli, api, *args, "--max-attempts", "2", "--idempotency-key", "webinar-7000", "--json"))
        .ok()
        .json()
    )
    assert again["campaign_id"] == campaign_id and again["accepted"] == 3
    assert [(r["line"], r["index"], r["id"]) for r in again["rejected"]] == [
        (3, None, "lead-x"),
        (5, 2, "lead-bad"),
        (8, 4, "lead-0"),
    ]

    status = (await happ(cli, api, "campaign", "status", "sofa", campaign_id)).ok().out
    assert status.startswith(f"campaign {campaign_id}: Webinar 12 Dec (sofa)\n")
    assert "  status          finished\n" in status and "  recipients      3/3 final\n" in status
    assert "by status:" in status and re.search(r"completed\s+3", status)
    listed = (await happ(cli, api, "campaign", "list", "sofa", "--status", "finished")).ok().out.splitlines()
    assert listed[0].split() == ["CAMPAIGN", "ID", "STATUS", "FINAL", "CREATED", "NAME"]
    assert any(line.startswith(f"{campaign_id}  finished  3/3") for line in listed), listed
    assert api.to("GET", "/sofa/campaigns")[-1].query == "status=finished&limit=50"

    # The report, to a file and to stdout.
    target = tmp_path / "out" / "report.csv"
    target.parent.mkdir()
    written = (await happ(cli, api, "campaign", "report", "sofa", campaign_id, "-o", str(target))).ok().out
    assert written == f"report of campaign {campaign_id} (finished) written to {target}: 3 recipients\n"
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert sorted(r["id"] for r in rows) == sorted(["lead-0", "lead-1", mask_phone(numbers[2])])
    assert {r["status"] for r in rows} == {"completed"} and all("*" in r["number"] for r in rows)
    assert not list(target.parent.glob(".*part")), "no partial file is left"
    printed = (await happ(cli, api, "campaign", "report", "sofa", campaign_id)).ok().out
    assert printed == target.read_bytes().decode(), "the same bytes"
    assert len(api.to("GET", f"/sofa/campaigns/{campaign_id}/report.csv")) == 2

    # Retry: the default filter finds nobody; a named one gives every recipient a new call.
    nothing = (await happ(cli, api, "campaign", "retry", "sofa", campaign_id)).ok().out
    assert nothing.startswith(f"campaign {campaign_id}: no recipient matches the default filter")
    assert api.to("POST", f"/sofa/campaigns/{campaign_id}/retry")[-1].body == b""
    filtered = (
        (
            await happ(
                cli, api, "campaign", "retry", "sofa", campaign_id, "--status", "failed", "--outcome", "nope"
            )
        )
        .ok()
        .out
    )
    assert "no recipient matches the filter" in filtered
    assert api.to("POST", f"/sofa/campaigns/{campaign_id}/retry")[-1].json() == {
        "statuses": ["failed"],
        "outcomes": ["nope"],
    }
    retried = (
        (await happ(cli, api, "campaign", "retry", "sofa", campaign_id, "--status", "completed", "--json"))
        .ok()
        .json()
    )
    assert retried == {"integration": "sofa", "campaign_id": campaign_id, "retried": 3, "status": "running"}
    assert api.to("POST", f"/sofa/campaigns/{campaign_id}/retry")[-1].json() == {"statuses": ["completed"]}
    watched = (await happ(cli, api, "campaign", "watch", "sofa", campaign_id, "--interval", "0.3")).ok()
    assert watched.out.splitlines()[-1].startswith(
        f"campaign {campaign_id} finished: 3 recipients · completed 3"
    )


async def test_pause_resume_and_cancel(cli: Cli, api: Recorder, tmp_path: Path) -> None:
    leads = tmp_path / "hours.csv"
    leads.write_text("phone_number\n" + phone(7100) + "\n" + phone(7101) + "\n")
    await set_hours(cli, closed_today())
    try:
        created = (
            (await happ(cli, api, "campaign", "create", "sofa", str(leads), "--name", "Closed", "--json"))
            .ok()
            .json()
        )
        campaign_id = created["campaign_id"]
        assert created["accepted"] == 2 and created["rejected"] == []
        await until_campaign(cli, api, campaign_id, {"running"})

        paused = (await happ(cli, api, "campaign", "pause", "sofa", campaign_id)).ok().out
        assert paused == (
            f"campaign {campaign_id} is paused: nothing new is dialled; calls on the line finish\n"
        )
        assert (await until_campaign(cli, api, campaign_id, {"paused"}))["counts"]["pending"] == 2
        resumed = (await happ(cli, api, "campaign", "resume", "sofa", campaign_id)).ok().out
        assert resumed == f"campaign {campaign_id} is running: dialling goes on\n"
        cancelled = (await happ(cli, api, "campaign", "cancel", "sofa", campaign_id)).ok().out
        assert cancelled.startswith(f"campaign {campaign_id} is ")
        for action in ("pause", "resume", "cancel"):
            [sent] = api.to("POST", f"/sofa/campaigns/{campaign_id}/{action}")
            assert sent.headers["authorization"] == f"Bearer {ADMIN}" and sent.body == b""

        ended = (await happ(cli, api, "campaign", "watch", "sofa", campaign_id, "--interval", "0.3")).ok()
        assert ended.out.splitlines()[-1] == (
            f"campaign {campaign_id} cancelled: 2 recipients · completed 0 · exhausted 0 · failed 0 · "
            "cancelled 2 · expired 0 · suppressed 0"
        )

        # A cancelled campaign: the API's refusal, on one line, and a non-zero exit.
        again = await happ(cli, api, "campaign", "pause", "sofa", campaign_id)
        assert again.code == 1 and again.out == ""
        assert again.error_line() == (
            f"happ campaign pause: the API refused POST /sofa/campaigns/{campaign_id}/pause (409): "
            f"campaign '{campaign_id}' is cancelled"
        )
        more = await happ(cli, api, "campaign", "append", "sofa", campaign_id, str(leads))
        assert f"(409): campaign '{campaign_id}' is cancelled: nothing can be added" in more.error_line()
    finally:
        await set_hours(cli, None)


def ctrl_c_as_on_a_terminal() -> None:
    """Run in the child before it starts: SIGINT's default action, as under a terminal. A suite
    started in the background by a shell (`make test &`) passes SIGINT on ignored, and Python then
    installs no Ctrl-C handler, so the child would never see the Ctrl-C these tests send."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_append_and_ctrl_c_stops_the_watching_not_the_campaign(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    first = tmp_path / "first.csv"
    first.write_text("phone_number,id\n" + phone(7200) + ",a\n")
    created = (
        await happ(cli, api, "campaign", "create", "sofa", str(first), "--name", "Later", "--start-at", later)
    ).ok()
    campaign_id = created_id(created)
    assert created.out.splitlines()[1:] == [
        f"  status   happ campaign status sofa {campaign_id}",
        f"  watch    happ campaign watch sofa {campaign_id}",
    ]
    assert api.to("POST", "/sofa/campaigns")[0].json()["start_at"] == later
    assert "idempotency-key" not in api.to("POST", "/sofa/campaigns")[0].headers

    more = tmp_path / "more.csv"
    more.write_text("id;phone_number;var.slot\na;" + phone(7201) + ";9:00\nb;" + phone(7202) + ";10:00\n")
    added = (await happ(cli, api, "campaign", "append", "sofa", campaign_id, str(more))).ok().out
    assert added.splitlines() == [
        f"campaign {campaign_id}: 1 recipient added, 1 rejected",
        "  line 2, id a: this id is already in the campaign",
    ]
    [sent] = api.to("POST", f"/sofa/campaigns/{campaign_id}/recipients")
    assert sent.json() == {
        "recipients": [
            {"phone_number": phone(7201), "id": "a", "variables": {"slot": "9:00"}},
            {"phone_number": phone(7202), "id": "b", "variables": {"slot": "10:00"}},
        ]
    }
    assert (await recipients(cli, campaign_id))["b"]["variables"] == {"slot": "10:00"}
    await until_campaign(cli, api, campaign_id, {"scheduled"})

    proc = await asyncio.create_subprocess_exec(
        HAPP,
        "campaign",
        "watch",
        "sofa",
        campaign_id,
        "--interval",
        "0.3",
        env={**cli.env, "HAPP_API_URL": api.base},
        cwd=cli.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=ctrl_c_as_on_a_terminal,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().startswith("progress: 0/2 final · scheduled · by status: pending 2"), line
        proc.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # a watch left polling would hold the gateway's shutdown
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, (rest, err)
    assert err.decode().splitlines() == [
        f"happ campaign watch: stopped watching (Ctrl-C); campaign {campaign_id} goes on (scheduled, 0/2 "
        f"final): watch it again with `happ campaign watch sofa {campaign_id}`, stop it with "
        f"`happ campaign pause sofa {campaign_id}` or `happ campaign cancel sofa {campaign_id}`"
    ]
    assert (await until_campaign(cli, api, campaign_id, {"scheduled"}))["total"] == 2, "it goes on"

    paused = (await happ(cli, api, "campaign", "pause", "sofa", campaign_id)).ok().out
    assert paused.startswith(f"campaign {campaign_id} is paused: "), paused
    (await happ(cli, api, "campaign", "cancel", "sofa", campaign_id)).ok()
    await until_campaign(cli, api, campaign_id, {"cancelled"})


async def test_more_rows_than_one_request_are_refused_before_any_is_sent(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv"
    big.write_text("phone_number,id\n" + "".join(f"{phone(n)},r{n}\n" for n in range(10_001)))
    for command in (
        ("campaign", "create", "sofa", str(big), "--name", "Big"),
        ("originate", "sofa", str(big)),
    ):
        result = await happ(cli, api, *command)
        line = result.error_line()
        assert (
            f"{big} has 10,001 recipients, more than the 10,000 one request takes; nothing was sent" in line
        )
        assert "split the file" in line and "`happ campaign append INTEGRATION CAMPAIGN_ID FILE`" in line
        assert result.out == "" and result.code == 1
    assert api.seen == [], "not one request"


async def test_the_api_refusing_or_missing_is_one_line_and_a_non_zero_exit(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("phone_number\n" + phone(7300) + "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("phone_number,id\n12,a\nnope,b\n")
    down = f"http://127.0.0.1:{free_port()}"
    create = ("campaign", "create", "sofa", str(leads), "--name", "X")
    api.fail[("GET", "/sofa/campaigns/cmp_broken")] = (
        500,
        {"success": False, "error": "internal error (KeyError)"},
    )
    api.fail[("POST", "/sofa/campaigns/cmp_busy/pause")] = (
        503,
        {"success": False, "error": "Temporal is unavailable", "dependency": "Temporal"},
    )
    runs = {
        "no such campaign": happ(cli, api, "campaign", "status", "sofa", "cmp_nope"),
        "no such report": happ(cli, api, "campaign", "report", "sofa", "cmp_nope"),
        "500": happ(cli, api, "campaign", "status", "sofa", "cmp_broken"),
        "503": happ(cli, api, "campaign", "pause", "sofa", "cmp_busy"),
        "422 settings": happ(
            cli, api, *create, "--start-at", "2030-01-02T00:00Z", "--end-at", "2030-01-01T00:00Z"
        ),
        "422 recipients": happ(cli, api, "campaign", "create", "sofa", str(bad), "--name", "Bad"),
        "bad start": happ(cli, api, *create, "--start-at", "tomorrow"),
        "down": cli(*create, HAPP_API_URL=down),
        "down, watch": cli("campaign", "watch", "sofa", "cmp_x", "--api-url", down),
        "unknown integration": happ(cli, api, "campaign", "list", "nosuch"),
        "bad id": happ(cli, api, "campaign", "status", "sofa", "../x"),
        "no file": happ(cli, api, "campaign", "create", "sofa", str(tmp_path / "nope.csv"), "--name", "X"),
    }
    results = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))
    lines = {what: r.error_line() for what, r in results.items()}
    assert all(r.out == "" for r in results.values()), results
    hint = "list the campaigns with `happ campaign list sofa`"
    assert lines["no such campaign"] == f"happ campaign status: no campaign 'cmp_nope': {hint}"
    assert lines["no such report"] == f"happ campaign report: no campaign 'cmp_nope': {hint}"
    assert lines["500"] == (
        "happ campaign status: the API refused GET /sofa/campaigns/cmp_broken (500): internal error (KeyError)"
    )
    assert lines["503"] == (
        f"happ campaign pause: the API at {api.base} answered 503 (Temporal is unavailable): Temporal is "
        "down, start it and try again"
    )
    assert lines["422 settings"].startswith(
        "happ campaign create: the API refused POST /sofa/campaigns (422): "
    )
    assert "end_at must be after start_at" in lines["422 settings"]
    assert lines["422 recipients"].startswith(
        "happ campaign create: the API refused POST /sofa/campaigns (422): no recipient was accepted: index 0: "
    )
    assert lines["422 recipients"].endswith("each once)"), "with the hint to check the columns"
    assert "check the phone_number column" in lines["422 recipients"]
    assert lines["bad start"] == (
        "happ campaign create: --start-at 'tomorrow' is not an ISO date-time: e.g. 2025-12-12T10:00+02:00"
    )
    for what in ("down", "down, watch"):
        assert f"cannot reach the API at {down}" in lines[what] and "`make dev`" in lines[what]
    assert lines["unknown integration"] == (
        f"happ campaign list: the API at {api.base} serves no integration 'nosuch': it serves sofa"
    )
    assert results["bad id"].code == 2 and "is not a campaign id" in lines["bad id"]
    assert "nope.csv does not exist" in lines["no file"]
    assert all(r.code == 1 for what, r in results.items() if what != "bad id")


async def test_originate_is_campaign_create_watch(cli: Cli, api: Recorder, tmp_path: Path) -> None:
    numbers = [phone(7400 + n) for n in range(2)]
    cli.stack.add_leads(numbers)
    leads = tmp_path / "spring leads.csv"
    leads.write_text("name;phone_number\nA;" + numbers[0] + "\nB;" + numbers[1] + "\nC;\n", encoding="utf-8")
    before = datetime.now().replace(second=0, microsecond=0)
    result = (await happ(cli, api, "originate", "sofa", str(leads), "--interval", "0.3")).ok()
    campaign_id = created_id(result)
    [sent] = api.to("POST", "/sofa/campaigns")
    name = sent.json()["name"]
    assert name.startswith("spring leads ")
    assert before <= datetime.strptime(name.removeprefix("spring leads "), "%Y-%m-%d %H:%M") <= datetime.now()
    assert sent.json()["recipients"] == [
        {"phone_number": numbers[0], "metadata": {"name": "A"}},
        {"phone_number": numbers[1], "metadata": {"name": "B"}},
    ]
    lines = result.out.splitlines()
    assert lines[:2] == [
        f"campaign {campaign_id} created: {name!r} on sofa, 2 recipients accepted, 1 rejected",
        "  line 4: no phone_number",
    ]
    assert lines[-2].startswith(f"campaign {campaign_id} finished: 2 recipients · completed 2")

    document = (
        (await happ(cli, api, "originate", "sofa", str(leads), "--name", "Quick", "--no-wait", "--json"))
        .ok()
        .json()
    )
    assert document["name"] == "Quick" and document["accepted"] == 2
    assert "campaign" not in document, "--no-wait does not watch"
    assert not api.to("GET", f"/sofa/campaigns/{document['campaign_id']}")
    watched = (
        (await happ(cli, api, "campaign", "watch", "sofa", document["campaign_id"], "--json")).ok().json()
    )
    assert watched["status"] == "finished" and watched["counts"]["completed"] == 2

    # Watched with --json: one document on stdout, the campaign's last view in it (a file with a BOM).
    more = [phone(7410 + n) for n in range(2)]
    cli.stack.add_leads(more)
    bom = tmp_path / "bom.csv"
    bom.write_text("\ufeffphone_number,id\n" + more[0] + ",m0\n,m1\n" + more[1] + ",m2\n", encoding="utf-8")
    watched_json = (
        (await happ(cli, api, "originate", "sofa", str(bom), "--json", "--interval", "0.3")).ok().json()
    )
    assert watched_json["accepted"] == 2
    assert [(r["line"], r["id"], r["error"]) for r in watched_json["rejected"]] == [
        (3, "m1", "no phone_number")
    ]
    assert watched_json["campaign"]["campaign_id"] == watched_json["campaign_id"]
    assert watched_json["campaign"]["status"] == "finished"
    assert watched_json["campaign"]["counts"]["completed"] == 2


async def test_originate_ctrl_c_stops_the_watching_not_the_campaign(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    leads = tmp_path / "waiting.csv"
    leads.write_text("phone_number\n" + phone(7500) + "\n" + phone(7501) + "\n")
    proc = await asyncio.create_subprocess_exec(
        HAPP,
        "originate",
        "sofa",
        str(leads),
        "--start-at",
        later,
        "--interval",
        "0.3",
        env={**cli.env, "HAPP_API_URL": api.base},
        cwd=cli.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=ctrl_c_as_on_a_terminal,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        while not any(line.startswith("progress: 0/2 final · scheduled · ") for line in seen):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, seen
            seen.append(line.decode().rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # a watch left polling would hold the gateway's shutdown
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, (seen, rest, err)
    found = CAMPAIGN_ID.search(seen[0])
    assert found and seen[0].endswith("on sofa, 2 recipients accepted, 0 rejected"), seen
    campaign_id = found.group(1)
    assert seen[-1] == "progress: 0/2 final · scheduled · by status: pending 2", seen
    assert err.decode().splitlines() == [
        f"happ originate: stopped watching (Ctrl-C); campaign {campaign_id} goes on (scheduled, 0/2 "
        f"final): watch it again with `happ campaign watch sofa {campaign_id}`, stop it with "
        f"`happ campaign pause sofa {campaign_id}` or `happ campaign cancel sofa {campaign_id}`"
    ]
    assert (await until_campaign(cli, api, campaign_id, {"scheduled"}))["total"] == 2, "it goes on"
    (await happ(cli, api, "campaign", "cancel", "sofa", campaign_id)).ok()
    await until_campaign(cli, api, campaign_id, {"cancelled"})


async def test_originate_refuses_a_file_it_cannot_use_before_any_request(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("phone,name\n+380994829573,Ivan\n")
    unsendable = tmp_path / "unsendable.csv"
    unsendable.write_text("phone_number,name\n,Ivan\n")
    header_only = tmp_path / "header.csv"
    header_only.write_text("phone_number\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("phone_number,name\n+380994829573,Jos\xe9\n".encode("latin-1"))
    files = {
        "missing": tmp_path / "nope.csv",
        "folder": tmp_path,
        "wrong": wrong,
        "unsendable": unsendable,
        "header only": header_only,
        "not UTF-8": latin,
    }
    runs = [happ(cli, api, "originate", "sofa", str(path), "--json") for path in files.values()]
    results = dict(zip(files, await asyncio.gather(*runs), strict=True))
    lines = {what: r.error_line() for what, r in results.items()}
    assert all(r.out == "" and r.code == 1 for r in results.values()), results
    assert lines == {
        "missing": f"happ originate: {files['missing']} does not exist: pass the path of a CSV file with a "
        "phone_number column",
        "folder": f"happ originate: {tmp_path} is a folder: pass the path of a CSV file",
        "wrong": f"happ originate: {wrong} has no phone_number column (its columns: phone, name): name the "
        "column of numbers phone_number",
        "unsendable": f"happ originate: {unsendable} has no row to send: all 1 were skipped (line 2: no "
        "phone_number)",
        "header only": f"happ originate: {header_only} has no row to send: add rows under the header, one "
        "phone_number each",
        "not UTF-8": f"happ originate: {latin} is not UTF-8 text: save it as CSV UTF-8",
    }
    assert api.seen == [], "not one request"


async def test_a_dry_run_shows_what_would_happen_and_stores_nothing(
    cli: Cli, api: Recorder, tmp_path: Path
) -> None:
    leads = tmp_path / "dry.csv"
    leads.write_text(f"phone_number,id\n{phone(7300)},a\nnot-a-number,b\n{phone(7301)},c\n")
    listed_before = (await happ(cli, api, "campaign", "list", "sofa", "--json")).ok().json()
    result = (
        await happ(cli, api, "campaign", "create", "sofa", str(leads), "--name", "Dry", "--dry-run")
    ).ok()
    assert result.out.startswith("dry run of 'Dry' on sofa: 2 of 3 recipients callable, 1 invalid, ")
    assert "nothing was stored or dialled" in result.out
    assert "  line 3: phone_number is not a valid phone number" in result.out
    assert phone(7300) not in result.out, "numbers are never printed whole"
    assert [(s.method, s.path) for s in api.seen][-1] == ("POST", "/sofa/campaigns/preflight")
    listed_after = (await happ(cli, api, "campaign", "list", "sofa", "--json")).ok().json()
    assert listed_after == listed_before, "no campaign was created"
