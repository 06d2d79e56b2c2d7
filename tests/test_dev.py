"""`happ dev` as a user runs it: one command brings the stack up, SIGTERM leaves nothing behind,
and a restart finds the calls and runs of the last session still there."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowHistory

from happ_integ.embedded.process import free_port
from happ_integ.temporal import HandlerRunInput, HandlerRunResult, connect_client
from tests.e2e.history_text import history_text

STARTUP_BUDGET_SECONDS = 60
PHONE = "+380994829573"


def _processes_under(path: Path) -> list[str]:
    """Command lines of live processes that mention `path` (our postgres/temporal/uvicorn children)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


class DevProcess:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.api_port, self.temporal_port, self.ui_port, self.pg_port = (free_port() for _ in range(4))
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("HAPP_", "DATABASE_URL", "TEMPORAL_"))
            },
            "HAPP_API_PORT": str(self.api_port),
            "HAPP_DEV_TEMPORAL_PORT": str(self.temporal_port),
            "HAPP_DEV_UI_PORT": str(self.ui_port),
            "HAPP_DEV_PG_PORT": str(self.pg_port),
            "HAPP_DATA_DIR": str(folder / ".happ"),
            "HAPP_DEV_SIMULATOR_PORT": str(free_port()),
            "HAPP_LOG_FORMAT": "json",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, *args: str) -> float:
        started = time.monotonic()
        log = open(self.folder / "dev.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "happ_integ.cli", "dev", *args],
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = started + STARTUP_BUDGET_SECONDS
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"no healthy API within {STARTUP_BUDGET_SECONDS}s:\n"
            + (self.folder / "dev.log").read_text()[-3000:]
        )

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def admin_token(self) -> str:
        return str(json.loads((self.folder / ".happ" / "dev-secrets.json").read_text())["HAPP_ADMIN_TOKEN"])

    def payload_key(self) -> str:
        return str(json.loads((self.folder / ".happ" / "dev-secrets.json").read_text())["HAPP_PAYLOAD_KEY"])

    def webhook_token(self) -> dict[str, str]:
        """Set the example's WEBHOOK_TOKEN (its routes take it) and return the header that carries it."""
        token = "dev-hook-" + "x" * 24
        admin = {"Authorization": f"Bearer {self.admin_token()}"}
        put = httpx.put(
            f"{self.api}/example/secrets", json={"WEBHOOK_TOKEN": token}, headers=admin, timeout=10
        )
        assert put.status_code == 200, put.text
        return {"Authorization": f"Bearer {token}"}


async def _start_delayed_order(address: str, payload_key: str) -> str:
    client = await connect_client(address, payload_key=payload_key)
    workflow_id = f"example:handler:create-order:in-flight-{time.time_ns()}"
    await client.start_workflow(
        "HandlerRun",
        HandlerRunInput(
            integration="example",
            handler="create-order",
            payload={"phone": "+380", "product_id": "in-flight"},
        ),
        id=workflow_id,
        task_queue="happ-example",
        start_delay=timedelta(seconds=3),
    )
    return workflow_id


async def _result(address: str, workflow_id: str, payload_key: str) -> dict[str, object]:
    client = await connect_client(address, payload_key=payload_key)
    handle = client.get_workflow_handle(workflow_id, result_type=HandlerRunResult)
    return (await asyncio.wait_for(handle.result(), 30)).response


async def _history(address: str, workflow_id: str) -> WorkflowHistory:
    """The history as the server keeps it, read by a client without the payload key."""
    return await (await connect_client(address)).get_workflow_handle(workflow_id).fetch_history()


def assert_no_phone(text: str) -> None:
    for shown in (PHONE, PHONE[1:], "0994829573", "994829573"):
        assert shown not in text, f"{shown} is readable in the history"


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    process = DevProcess(tmp_path)
    yield process
    if process.proc is not None:
        process.proc.kill()
        process.proc.wait(10)
    # A failed test must not leave its servers running for the rest of the suite.
    for line in _processes_under(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


def test_dev_runs_the_stack_stops_clean_and_keeps_history(dev: DevProcess) -> None:
    seconds = dev.start()
    assert seconds < STARTUP_BUDGET_SECONDS
    admin = {"Authorization": f"Bearer {dev.admin_token()}"}  # the detailed checks are the admin's
    health = httpx.get(f"{dev.api}/health", headers=admin).json()
    assert health["checks"]["postgres"]["ok"] and health["checks"]["temporal"]["ok"]
    ui = httpx.get(f"http://127.0.0.1:{dev.ui_port}/", timeout=5)
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    deadline = time.monotonic() + 15  # the worker's first poll may come just after the API answers
    while not (worker := httpx.get(f"{dev.api}/example/health", headers=admin).json()["checks"]["worker"])[
        "ok"
    ]:
        assert time.monotonic() < deadline, worker
        time.sleep(0.2)
    # History is encrypted (a key generated next to the admin token): the Web UI decodes through
    # the API's codec, which happ dev points it at.
    ui_settings = httpx.get(f"http://127.0.0.1:{dev.ui_port}/api/v1/settings", timeout=5).json()
    assert ui_settings["Codec"]["Endpoint"] == f"{dev.api}/codec", ui_settings["Codec"]
    hook = dev.webhook_token()

    # A durable run through the API: the workflow history lives in .happ/temporal.db.
    order = httpx.post(
        f"{dev.api}/example/webhook/create-order",
        json={"phone": "+380", "product_id": "p1"},
        headers={**hook, "Idempotency-Key": "dev-restart-order"},
        timeout=30,
    )
    assert order.status_code == 200, order.text
    workflow_id = order.headers["x-workflow-id"]
    # Work in flight: a run that only starts 3 s from now, after happ dev has been stopped.
    in_flight = asyncio.run(_start_delayed_order(dev.temporal_address, dev.payload_key()))

    assert dev.stop() == 0
    leftovers = _processes_under(dev.folder)
    assert leftovers == [], f"left behind: {leftovers}"

    dev.start()
    assert asyncio.run(_result(dev.temporal_address, in_flight, dev.payload_key()))["success"] is True, (
        "the run survived the restart"
    )
    headers = {"Authorization": f"Bearer {dev.admin_token()}"}
    # The same admin token and secret key, the same database rows, the same Temporal history.
    assert httpx.get(f"{dev.api}/example/secrets", headers=headers).status_code == 200
    again = httpx.post(
        f"{dev.api}/example/webhook/create-order",
        json={"phone": "+380", "product_id": "p1"},
        headers={**hook, "Idempotency-Key": "dev-restart-order"},
        timeout=30,
    )
    assert again.status_code == 200 and again.json() == order.json()
    # (A dedup hit answers from PostgreSQL: the same body; it may carry no X-Workflow-Id.)
    assert again.headers.get("x-workflow-id", workflow_id) == workflow_id
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            f"127.0.0.1:{dev.temporal_port}",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    assert (
        "WorkflowExecutionCompleted" in completed.stdout or "WORKFLOW_EXECUTION_COMPLETED" in completed.stdout
    )
    assert dev.stop() == 0
    assert _processes_under(dev.folder) == []


def test_api_worker_and_setup_run_as_separate_processes(tmp_path: Path, pg_url: str) -> None:
    """Production shape: `happ setup`, `happ worker` and `happ api` against given servers."""
    from cryptography.fernet import Fernet

    from happ_integ.embedded import EmbeddedTemporal

    temporal = EmbeddedTemporal(db_file=None, port=free_port(), ui_port=None)
    temporal.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HAPP_")},
        "DATABASE_URL": pg_url,
        "TEMPORAL_ADDRESS": temporal.address,
        "HAPP_API_PORT": str(port),
        "HAPP_SECRET_KEY": Fernet.generate_key().decode(),
        "HAPP_ADMIN_TOKEN": "separate-admin-" + "a" * 32,
        "HAPP_INTEGRATIONS": "example",
        "HAPP_LOG_FORMAT": "json",
    }
    happ = [sys.executable, "-m", "happ_integ.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # Without a payload key nothing that talks to Temporal starts: history would hold numbers in clear.
        for command in ("setup", "api", "worker"):
            refused = subprocess.run(
                [*happ, command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
            )
            assert refused.returncode != 0, (command, refused.stdout, refused.stderr)
            assert "HAPP_PAYLOAD_KEY is not set" in refused.stderr, (command, refused.stderr)
            assert "HAPP_PAYLOAD_ENCRYPTION=off" in refused.stderr, (command, refused.stderr)
            if command == "setup":  # an operator command: one line that names the fix
                assert refused.stderr.startswith("happ setup: HAPP_PAYLOAD_KEY is not set"), refused.stderr
                assert len(refused.stderr.splitlines()) == 1, refused.stderr
        short = subprocess.run(
            [*happ, "api"],
            env={**env, "HAPP_ADMIN_TOKEN": "separate-admin"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert short.returncode != 0 and "HAPP_ADMIN_TOKEN" in short.stderr, short.stderr
        assert "at least 32" in short.stderr and "separate-admin" not in short.stderr, short.stderr
        # Said out loud, it runs without (`happ api` and `happ worker` log a warning at start).
        unencrypted = subprocess.run(
            [*happ, "setup"],
            env={**env, "HAPP_PAYLOAD_ENCRYPTION": "off"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unencrypted.returncode == 0, unencrypted.stderr

        env["HAPP_PAYLOAD_KEY"] = Fernet.generate_key().decode()
        setup = subprocess.run(
            [*happ, "setup"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert setup.returncode == 0, setup.stderr
        assert json.loads(setup.stdout.splitlines()[-1])["integration"] == "example"
        for command in ("worker", "api"):
            log = open(tmp_path / f"{command}.log", "wb")
            procs.append(subprocess.Popen([*happ, command], env=env, cwd=tmp_path, stdout=log, stderr=log))
            log.close()
        deadline = time.monotonic() + 30
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/example/health", timeout=2).json()
                if health.get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert health.get("status") == "ok", (health, (tmp_path / "worker.log").read_text()[-2000:])
        admin = {"Authorization": f"Bearer {env['HAPP_ADMIN_TOKEN']}"}
        hook = "separate-hook-" + "h" * 24
        put = httpx.put(
            f"http://127.0.0.1:{port}/example/secrets",
            json={"WEBHOOK_TOKEN": hook},
            headers=admin,
            timeout=10,
        )
        assert put.status_code == 200, put.text
        order = httpx.post(
            f"http://127.0.0.1:{port}/example/webhook/create-order",
            json={"phone": PHONE, "product_id": "separate"},
            headers={"Authorization": f"Bearer {hook}"},
            timeout=30,
        )
        assert order.status_code == 200 and order.json()["success"] is True, order.text
        # At rest the run's history holds the number only encrypted; the API's codec reads it back.
        history = asyncio.run(_history(temporal.address, order.headers["x-workflow-id"]))
        assert_no_phone(history_text(history, decrypt=False))
        started = json.loads(history.to_json())["events"][0]["workflowExecutionStartedEventAttributes"]
        decoded = httpx.post(
            f"http://127.0.0.1:{port}/codec/decode", json=started["input"], headers=admin, timeout=10
        )
        assert decoded.status_code == 200, decoded.text
        assert PHONE in base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(20) for proc in procs]
        temporal.stop()
    assert codes == [0, 0], "worker and api stop cleanly on SIGTERM"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_make_dev_leaves_no_process_behind(dev: DevProcess, sig: signal.Signals) -> None:
    """`make dev` itself, signalled: SIGTERM is forwarded by make; SIGKILL reaches happ dev as its parent's death."""
    repo = Path(__file__).resolve().parent.parent
    log = open(dev.folder / "make.log", "wb")
    make = subprocess.Popen(["make", "-s", "-C", str(repo), "dev"], env=dev.env, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + STARTUP_BUDGET_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{dev.api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        make.kill()
        raise AssertionError((dev.folder / "make.log").read_text()[-3000:])
    assert _processes_under(dev.folder), "postgres and temporal run with data under the folder"
    make.send_signal(sig)
    make.wait(30)
    deadline = time.monotonic() + 30
    while _processes_under(dev.folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_under(dev.folder) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{dev.api}/health", timeout=2)


def test_dev_simulate_wires_the_example_to_the_loopback_peers(dev: DevProcess) -> None:
    dev.start("--simulate")
    init = httpx.post(
        f"{dev.api}/example/webhook/agent-init",
        json={"phone": "+380994829573", "conversationId": "demo"},
        headers={"Authorization": "Bearer sim-webhook-token"},  # what --simulate gives WEBHOOK_TOKEN
        timeout=30,
    )
    assert init.status_code == 200, init.text
    assert init.json()["context"]["clientName"] == "Іван Петренко", "read from the simulated NetHunt"
    secrets = httpx.get(
        f"{dev.api}/example/secrets", headers={"Authorization": f"Bearer {dev.admin_token()}"}
    )
    assert secrets.json()["secrets"]["NETHUNT_API_KEY"] is True
    # The README's one curl: a whole call to the demo lead, played by the simulated voice assistant.
    started = httpx.post(
        f"{dev.api}/sofa/webhook/call-originate",
        json={"phone_number": "+380994829573"},
        headers={"Authorization": "Bearer sim-webhook-token"},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    call_id = started.json()["callId"]
    admin = {"Authorization": f"Bearer {dev.admin_token()}"}
    deadline = time.monotonic() + 60
    while (state := httpx.get(f"{dev.api}/sofa/calls/{call_id}", headers=admin, timeout=10).json())[
        "status"
    ] != "completed":
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["variables"]["client_name"] == "Іван Петренко"
    assert state["result"]["written"] == ["status", "call_log", "comment"]
    # The whole call, as the Temporal server keeps it, shows the number nowhere in clear.
    history = asyncio.run(_history(dev.temporal_address, f"sofa:call:{call_id}"))
    assert_no_phone(history_text(history, decrypt=False))
    assert "Іван Петренко" not in history_text(history, decrypt=False), "nor what the CRM said"
    _run_the_readme_campaign(dev)
    assert dev.stop() == 0


def _readme_campaign_commands() -> list[str]:
    """The shell commands of the README's "Run a campaign" block: a command goes on while a line
    ends with a backslash or a quote is open."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Run a campaign", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    current = ""
    for line in block.splitlines():
        current += line + "\n"
        if line.endswith("\\") or current.count("'") % 2:
            continue
        if not current.lstrip().startswith("#"):
            commands.append(current)
        current = ""
    return commands


def _run_the_readme_campaign(dev: DevProcess) -> None:
    """Every curl of "Run a campaign", run by the shell as the README writes it (the API's port
    aside): the campaign is created, read, paused, resumed, listed, reported, and retried once done."""
    commands = _readme_campaign_commands()
    token = 'TOKEN=$(python3 -c \'import json;print(json.load(open(".happ/dev-secrets.json"))["HAPP_ADMIN_TOKEN"])\')'

    def shell(command: str, campaign_id: str = "") -> str:
        command = command.replace("localhost:3001", f"127.0.0.1:{dev.api_port}")
        command = command.replace("<campaign_id>", campaign_id)
        done = subprocess.run(
            ["bash", "-c", f"{token}; {command}"], cwd=dev.folder, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        return done.stdout

    assert len(commands) == 7, commands
    created = json.loads(shell(commands[0]))
    assert created["accepted"] == 2 and created["rejected"] == [], created
    campaign_id = created["campaign_id"]
    assert json.loads(shell(commands[0]))["campaign_id"] == campaign_id, "the Idempotency-Key holds"
    assert json.loads(shell(commands[1], campaign_id))["total"] == 2
    assert json.loads(shell(commands[2], campaign_id))["status"] == "paused"
    assert json.loads(shell(commands[3], campaign_id))["status"] == "running"
    admin = {"Authorization": f"Bearer {dev.admin_token()}"}
    deadline = time.monotonic() + 120
    while (view := httpx.get(f"{dev.api}/sofa/campaigns/{campaign_id}", headers=admin, timeout=10).json())[
        "status"
    ] != "finished":
        assert time.monotonic() < deadline, view
        time.sleep(0.5)
    assert view["counts"]["completed"] == 2, (
        view,
        shell(commands[4].replace("?status=completed", ""), campaign_id),
    )
    listed = json.loads(shell(commands[4], campaign_id))
    assert {r["recipient_id"] for r in listed["recipients"]} == {"lead-1", "lead-2"}
    report = shell(commands[5], campaign_id).strip().splitlines()
    assert report[0].startswith("id,number,status") and len(report) == 3, report
    retried = json.loads(shell(commands[6], campaign_id))
    assert retried["retried"] == 0, retried  # both completed: nothing to call again


def test_dev_generates_a_long_admin_token_and_a_payload_key_once(tmp_path: Path) -> None:
    from happ_integ.dev import dev_secrets
    from happ_integ.keys import KeyRing
    from happ_integ.settings import Settings

    path = tmp_path / "dev-secrets.json"
    # A folder from before payload encryption: its admin token and secret key are kept, a key is added.
    path.write_text(json.dumps({"HAPP_ADMIN_TOKEN": "o" * 32, "HAPP_SECRET_KEY": "kept"}))
    settings = dev_secrets(Settings(), tmp_path)
    stored = json.loads(path.read_text())
    assert stored["HAPP_ADMIN_TOKEN"] == "o" * 32 and stored["HAPP_SECRET_KEY"] == "kept"
    assert settings.payload_key is not None
    assert settings.payload_key.get_secret_value() == stored["HAPP_PAYLOAD_KEY"]
    KeyRing.parse(stored["HAPP_PAYLOAD_KEY"], "HAPP_PAYLOAD_KEY")
    assert path.stat().st_mode & 0o077 == 0, "readable by its owner only"
    assert dev_secrets(Settings(), tmp_path).payload_key == settings.payload_key, "generated once"

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    made = dev_secrets(Settings(), fresh)
    assert made.admin_token is not None and len(made.require_admin_token()) >= 32
    Settings(HAPP_ADMIN_TOKEN=made.require_admin_token())  # passes the check every process makes
    off = tmp_path / "off"
    off.mkdir()
    assert dev_secrets(Settings(HAPP_PAYLOAD_ENCRYPTION="off"), off).payload_key is None
    assert "HAPP_PAYLOAD_KEY" not in json.loads((off / "dev-secrets.json").read_text())
