"""`happ secrets …`, `happ config …`, `happ setup`, `happ trigger` and every command's --help."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import subprocess
import termios
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from happ_integ.calls.config import CallHandling
from happ_integ.cli import main
from happ_integ.keys import generate_key
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.stores.creds import SecretKeyMismatch
from happ_integ.temporal import connect_settings
from tests.cli.conftest import HAPP, Cli, cli_env, happ

pytestmark = pytest.mark.timeout(300)

COMMANDS = [
    (),
    ("dev",),
    ("api",),
    ("worker",),
    ("setup",),
    ("simulator",),
    ("call",),
    ("calls",),
    ("call-status",),
    ("cancel",),
    ("originate",),
    ("secrets",),
    ("secrets", "set"),
    ("secrets", "list"),
    ("secrets", "rotate-key"),
    ("config",),
    ("config", "get"),
    ("config", "set"),
    ("trigger",),
    ("new-integration",),
]


async def test_happ_help_runs_as_a_process(tmp_path: Path) -> None:
    result = await happ("--help", env=cli_env({}, tmp_path / ".happ"), cwd=tmp_path)
    assert result.code == 0 and result.err == "" and result.out.startswith("usage: happ")
    assert all(command[0] in result.out for command in COMMANDS if command)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "happ")
def test_every_command_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: the parser is the same one the `happ` process builds, without a second of
    # interpreter start per command.
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"usage: happ {' '.join(command)}".rstrip())


async def test_secrets_set_reads_stdin_and_never_shows_the_value(cli: Cli) -> None:
    canary = "canary-" + uuid.uuid4().hex
    outputs: list[str] = []

    async def run(*args: str, input: str | None = None) -> str:
        result = await cli(*args, input=input)
        outputs.extend([result.out, result.err])
        return result.ok().out

    refused = await cli("secrets", "set", "sofa", "CLI_CANARY", input=canary + "\n")
    outputs.extend([refused.out, refused.err])
    line = refused.error_line()
    assert "integration 'sofa' has no secret 'CLI_CANARY'" in line and "NETHUNT_API_KEY" in line
    assert "pass --new" in line
    assert await cli.stack.resources.creds("sofa").reveal("CLI_CANARY") is None

    text = await run("secrets", "set", "sofa", "CLI_CANARY", "--new", input=canary + "\n")
    assert text == "CLI_CANARY of sofa is set (the value is stored encrypted and never shown)\n"
    assert await cli.stack.resources.creds("sofa").reveal("CLI_CANARY") == canary, (
        "one trailing newline dropped"
    )

    listed = json.loads(await run("secrets", "list", "sofa", "--json"))
    assert listed["integration"] == "sofa" and listed["secrets"]["CLI_CANARY"] is True
    assert listed["secrets"]["NETHUNT_API_KEY"] is True
    table = (await run("secrets", "list", "sofa")).splitlines()
    assert table[0].split() == ["NAME", "STATE"]
    assert ["CLI_CANARY", "set"] in [line.split() for line in table]

    again = json.loads(await run("secrets", "set", "sofa", "CLI_CANARY", "--json", input=canary + "-2"))
    assert again == {"integration": "sofa", "updated": ["CLI_CANARY"], "cleared": False}
    assert await cli.stack.resources.creds("sofa").reveal("CLI_CANARY") == canary + "-2"

    empty = await cli("secrets", "set", "sofa", "CLI_CANARY", input="")
    assert "no value for CLI_CANARY" in empty.error_line() and "--clear" in empty.error_line()
    assert "cleared" in await run("secrets", "set", "sofa", "CLI_CANARY", "--clear")
    assert json.loads(await run("secrets", "list", "sofa", "--json"))["secrets"]["CLI_CANARY"] is False

    bad = await cli("secrets", "set", "sofa", "lower-case", input="x")
    assert "'lower-case' is not a secret name" in bad.error_line()
    wrong = await cli("secrets", "set", "sofa", "CLI_CANARY", "--new", input=canary, HAPP_ADMIN_TOKEN="nope")
    outputs.extend([wrong.out, wrong.err])
    assert "HAPP_ADMIN_TOKEN" in wrong.error_line()

    everything = "\n".join(
        [*outputs, cli.stack.worker_output(), *(repr(e) for e in cli.stack.capture.events)]
    )
    assert canary not in everything


def on_a_terminal(argv: list[str], env: dict[str, str], cwd: Path, typed: str) -> tuple[int, str]:
    """Run `argv` on a pseudo-terminal of its own (its controlling terminal, as in a shell), type
    `typed` and Enter at its prompt; its exit status and everything the terminal showed."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    while b"(the value is not shown): " not in shown:
        assert time.monotonic() < deadline and proc.poll() is None, shown
        if select.select([master], [], [], 0.5)[0]:
            shown += os.read(master, 4096)
    os.write(master, typed.encode() + b"\n")
    while True:
        try:
            chunk = os.read(master, 4096) if select.select([master], [], [], 30)[0] else b""
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(30), shown.decode(errors="replace")


async def test_secrets_set_prompts_without_echo_on_a_terminal(cli: Cli) -> None:
    canary = "typed-" + uuid.uuid4().hex
    argv = [HAPP, "secrets", "set", "sofa", "CLI_TYPED", "--new"]
    code, shown = await asyncio.to_thread(on_a_terminal, argv, cli.env, cli.cwd, canary)
    assert code == 0, shown
    assert "CLI_TYPED of sofa (the value is not shown): " in shown
    assert "CLI_TYPED of sofa is set" in shown
    assert canary not in shown, "the value typed is not echoed"
    assert await cli.stack.resources.creds("sofa").reveal("CLI_TYPED") == canary
    (await cli("secrets", "set", "sofa", "CLI_TYPED", "--clear")).ok()


async def test_config_get_and_set_validate_like_the_api(cli: Cli) -> None:
    got = (await cli("config", "get", "sofa", "call_handling", "--json")).ok().json()
    assert got["integration"] == "sofa" and got["key"] == "call_handling"
    assert got["value"]["concurrency_limit"] == 3 and got["value"]["calling_hours"] is None
    assert json.loads((await cli("config", "get", "sofa", "crm_fields")).ok().out)["phone"] == "Phone"

    try:
        stored = (await cli("config", "set", "sofa", "call_handling", '{"concurrency_limit": 4}')).ok().out
        assert stored.startswith("stored call_handling of sofa:\n")
        value = json.loads(stored.split("\n", 1)[1])
        defaults = CallHandling().model_dump(mode="json")
        assert value == {**defaults, "concurrency_limit": 4}, "as the API does: the other fields are defaults"
        merged = await cli(
            "config", "set", "sofa", "call_handling", '{"max_attempts": 2}', "--merge", "--json"
        )
        assert merged.ok().json()["value"] == {**defaults, "concurrency_limit": 4, "max_attempts": 2}
        refused = await cli("config", "set", "sofa", "call_handling", '{"concurrency_limit": "many"}')
        line = refused.error_line()
        assert line.startswith("happ config set: the API refused PUT /sofa/config/call_handling (422)")
        assert "concurrency_limit" in line
        unknown_field = await cli("config", "set", "sofa", "call_handling", '{"concurency_limit": 5}')
        assert "concurency_limit" in unknown_field.error_line()
        assert "is not JSON" in (await cli("config", "set", "sofa", "call_handling", "{nope")).error_line()
        assert (
            "must be a JSON object" in (await cli("config", "set", "sofa", "call_handling", "5")).error_line()
        )
        current = (await cli("config", "get", "sofa", "call_handling", "--json")).ok().json()
        assert current["value"]["concurrency_limit"] == 4, "a refused value changes nothing"
    finally:
        piped = await cli("config", "set", "sofa", "call_handling", "--json", input=json.dumps(got["value"]))
        assert piped.ok().json()["value"] == got["value"]

    missing = (await cli("config", "get", "sofa", "nope")).error_line()
    assert "integration 'sofa' has no config 'nope'" in missing
    assert "its configs: call_handling, contact_policy, crm_fields, retention, status_map" in missing
    assert "is not a config key" in (await cli("config", "get", "sofa", "a/b")).error_line()
    assert "serves no integration 'keycrm'" in (await cli("config", "get", "keycrm", "keycrm")).error_line()


async def test_setup_and_trigger_fire_the_schedule_now(cli: Cli) -> None:
    text = (await cli("setup", "example")).ok().out.splitlines()
    report = json.loads(text[-1])
    assert report["integration"] == "example" and "example:retry" in report["schedules"]
    document = (await cli("setup", "--integration", "example", "--json")).ok().json()
    assert document["setup"][0]["schedules"] == {"example:retry": "updated"}

    client = await connect_settings(cli.stack.settings)
    handle = client.get_schedule_handle("example:retry")
    # Two triggers in a row, well within a second of each other: each starts a run of its own
    # (a run's id ends with its start second; the second trigger once reused the first's id, and
    # the Schedule dropped it). What the operator sees is the run each names, as a workflow.
    fired = (await cli("trigger", "example", "retry", "--json")).ok().json()
    assert fired["triggered"] == ["example:retry"]
    assert fired["web_ui"]["example:retry"].endswith("/namespaces/default/schedules/example:retry")
    first = fired["runs"]["example:retry"]
    assert first is not None and first["workflow_id"].startswith("example:handler:retry:scheduled-")
    text = (await cli("trigger", "example")).ok().out
    assert text.startswith("fired example:retry now: run example:handler:retry:scheduled-"), text
    second = text.split("run ", 1)[1].split()[0]
    assert second != first["workflow_id"]
    for workflow_id, run_id in ((first["workflow_id"], first["run_id"]), (second, None)):
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        assert described.workflow_type == "HandlerRun" and described.status is not None
    await handle.pause(note="fired by the test; no more runs wanted")

    assert "has no scheduled handlers" in (await cli("trigger", "sofa")).error_line()
    line = (await cli("trigger", "example", "nope")).error_line()
    assert "no scheduled handler 'nope': its scheduled handlers are retry" in line
    assert "no integration 'nope'" in (await cli("trigger", "nope")).error_line()
    assert "no integration 'nope'" in (await cli("setup", "nope")).error_line()


async def test_rotate_key_re_encrypts_every_secret_under_the_first_key(pg_url: str, tmp_path: Path) -> None:
    database = f"rotate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    url = pg_url.rsplit("/", 1)[0] + f"/{database}"
    old, new = generate_key(), generate_key()
    values = {
        ("sofa", "NETHUNT_API_KEY"): "v-" + uuid.uuid4().hex,
        ("keycrm", "KEYCRM_API_KEY"): "v-" + uuid.uuid4().hex,
    }

    async def reveal(key: str) -> dict[tuple[str, str], str | None]:
        resources = await open_resources(Settings(DATABASE_URL=url, HAPP_SECRET_KEY=key), {})
        try:
            return {(i, n): await resources.creds(i).reveal(n) for i, n in values}
        finally:
            await close_resources(resources)

    resources = await open_resources(Settings(DATABASE_URL=url, HAPP_SECRET_KEY=old), {})
    try:
        for (integration, name), value in values.items():
            await resources.creds(integration).set_many({name: value})
        await resources.creds("sofa").ensure_placeholders(["NETHUNT_EMAIL"])  # unset: nothing to rotate
    finally:
        await close_resources(resources)

    env = {**cli_env({}, tmp_path / ".happ"), "DATABASE_URL": url}
    # The new key first, the old one after it: the old one still decrypts until the rotation.
    assert await reveal(f"{new},{old}") == values
    with pytest.raises(SecretKeyMismatch):
        await reveal(new)

    wrong = await happ("secrets", "rotate-key", env={**env, "HAPP_SECRET_KEY": generate_key()}, cwd=tmp_path)
    line = wrong.error_line()
    assert "HAPP_SECRET_KEY" in line and "new_key,old_key" in line
    assert (
        "HAPP_SECRET_KEY is not set"
        in (await happ("secrets", "rotate-key", env=env, cwd=tmp_path)).error_line()
    )

    rotated = await happ(
        "secrets", "rotate-key", "--json", env={**env, "HAPP_SECRET_KEY": f"{new},{old}"}, cwd=tmp_path
    )
    document = rotated.ok().json()
    assert document["rotated"] == 2 and document["integrations"] == {"keycrm": 1, "sofa": 1}
    assert document["keys"] == 2
    assert await reveal(new) == values, "the new key alone decrypts every secret now"
    with pytest.raises(SecretKeyMismatch):
        await reveal(old)

    text = (await happ("secrets", "rotate-key", env={**env, "HAPP_SECRET_KEY": new}, cwd=tmp_path)).ok().out
    assert text.startswith("re-encrypted 2 secrets of 2 integrations (keycrm 1, sofa 1) under the first key")
    assert not any(value in rotated.out + text for value in values.values())
