"""`happ new-integration`: the package it writes is the shipped integration under the new name,
imports, passes its own tests and its lint, and `happ dev --simulate` serves it with a whole
simulated call, driven by `happ call`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from happ_integ.scaffold import renamed, write_integration
from happ_integ.scaffold.writer import SOURCES
from simulator.app import DEMO_PHONE
from tests.cli.conftest import HAPP
from tests.test_dev import DevProcess, _processes_under

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
FLAVOURS = ("nethunt", "keycrm", "none")
FILES = (
    "__init__.py",
    "config.py",
    "models.py",
    "migrations.py",
    "handlers/__init__.py",
    "handlers/crm_lookup.py",
    "handlers/crm_postcall.py",
)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HAPP_", "DATABASE_URL", "TEMPORAL_"))}


def run(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0 and result.stdout == "", (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    return line


def remove(name: str) -> None:
    shutil.rmtree(REPO / "integrations" / name, ignore_errors=True)
    (REPO / "tests" / "integrations" / f"test_{name}.py").unlink(missing_ok=True)
    for cached in (REPO / "tests" / "integrations" / "__pycache__").glob(f"test_{name}.*"):
        cached.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def generated() -> Iterator[dict[str, str]]:
    """One integration of each flavour, written into integrations/ under a name of its own, and
    removed (with its test) when the module is done."""
    tag = uuid.uuid4().hex[:8]
    names = {crm: f"clitest_{tag}_{crm}" for crm in FLAVOURS}
    try:
        for crm, name in names.items():
            result = run(HAPP, "new-integration", name, "--crm", crm, "--json")
            assert result.returncode == 0 and result.stderr == "", result.stderr
            document = json.loads(result.stdout)
            assert document["name"] == name and document["crm"] == crm
            package = REPO / "integrations" / name
            assert {str(Path(p).resolve()) for p in document["files"]} == {
                *(str(package / f) for f in FILES),
                str(REPO / "tests" / "integrations" / f"test_{name}.py"),
            }
        yield names
    finally:
        for name in names.values():
            remove(name)


def test_the_integrations_import_with_discover_integrations(generated: dict[str, str]) -> None:
    script = (
        "import json, sys\n"
        "from happ_integ.integration import discover_integrations\n"
        "found = discover_integrations(sys.argv[1:])\n"
        "print(json.dumps({n: {'handlers': sorted(i.handlers), 'lookup': i.call_flow.lookup,"
        " 'postcall': i.call_flow.postcall, 'secrets': list(i.secrets),"
        " 'configs': sorted(i.default_configs)} for n, i in found.items()}))\n"
    )
    result = run(sys.executable, "-c", script, *generated.values())
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    for name in generated.values():
        assert found[name]["handlers"] == ["crm-lookup", "crm-postcall"]
        assert (found[name]["lookup"], found[name]["postcall"]) == ("crm-lookup", "crm-postcall")
    assert found[generated["nethunt"]]["secrets"] == ["NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID"]
    assert found[generated["keycrm"]]["secrets"] == ["KEYCRM_API_KEY"]
    assert found[generated["none"]]["secrets"] == []
    assert found[generated["keycrm"]]["configs"] == [
        "call_handling",
        "contact_policy",
        "keycrm",
        "retention",
        "status_map",
    ]


def test_the_generated_tests_pass_and_the_code_is_lint_clean(generated: dict[str, str]) -> None:
    tests = [f"tests/integrations/test_{name}.py" for name in generated.values()]
    result = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    files = [*tests, *(f"integrations/{name}" for name in generated.values())]
    ruff = str(Path(sys.executable).parent / "ruff")
    lint = run(ruff, "check", *files)
    assert lint.returncode == 0, lint.stdout
    formatted = run(ruff, "format", "--check", *files)
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.parametrize("crm", FLAVOURS)
def test_happ_dev_simulate_serves_it_with_a_whole_call(
    generated: dict[str, str], crm: str, tmp_path: Path
) -> None:
    name = generated[crm]
    dev = DevProcess(tmp_path)
    dev.env["HAPP_INTEGRATIONS"] = name
    try:
        dev.start("--simulate")
        # No settings given: `happ call` and `happ call-status` find the dev stack of this folder.
        started = run(HAPP, "call", name, DEMO_PHONE, "--json", cwd=tmp_path, env=dev.env)
        assert started.returncode == 0 and started.stderr == "", started.stderr
        call_id = json.loads(started.stdout)["call_id"]
        deadline = time.monotonic() + 90
        while True:
            status = run(HAPP, "call-status", name, call_id, "--json", cwd=tmp_path, env=dev.env)
            assert status.returncode == 0, status.stderr
            state = json.loads(status.stdout)
            if state["status"] in ("completed", "exhausted", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, (state, (tmp_path / "dev.log").read_text()[-3000:])
            time.sleep(0.5)
        assert state["status"] == "completed", state
        assert (
            state["web_ui"]
            == f"http://127.0.0.1:{dev.ui_port}/namespaces/default/workflows/{name}:call:{call_id}"
        )
        if crm == "none":
            assert "client_name" not in state["variables"]
            assert state["result"]["written"] == [] and state["result"]["note"] == "no CRM: nothing written"
        else:
            assert state["variables"]["client_name"] == "Іван Петренко", "the simulator's demo lead"
            written = ["status", "call_log", "comment"] if crm == "nethunt" else ["status", "summary"]
            assert state["result"]["written"] == written
        listed = run(HAPP, "calls", name, cwd=tmp_path, env=dev.env)
        assert listed.returncode == 0 and call_id in listed.stdout, listed.stderr
        assert dev.stop() == 0
    finally:
        if dev.proc is not None:
            dev.proc.kill()
            dev.proc.wait(10)
        for line in _processes_under(tmp_path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


# Where `keycrm` names the CRM, not the integration: what a keycrm copy keeps, spelled out by hand.
CRM_SPELLINGS = re.compile(
    r'ctx\.keycrm\(|simulator\.keycrm\.|sims\.keycrm\b|DEMO\.keycrm\b|"keycrm[".]|--crm keycrm'
)


def shipped(package: str) -> dict[str, str]:
    """The shipped integration's files and, under `test.py`, its test, as the checkout holds them."""
    folder = REPO / "integrations" / package
    files = {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in folder.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    return {**files, "test.py": (REPO / "tests" / "integrations" / f"test_{package}_handlers.py").read_text()}


def written_files(tmp_path: Path, crm: str) -> dict[str, str]:
    written = write_integration(
        "acme", crm, directory=tmp_path / "integrations", tests_dir=tmp_path / "tests"
    )
    texts = {
        p.relative_to(written.package).as_posix(): p.read_text()
        for p in written.files
        if p != written.test_file
    }
    return {**texts, "test.py": written.test_file.read_text()}


@pytest.mark.parametrize("crm", ["nethunt", "keycrm"])
def test_a_flavour_is_the_shipped_integration_and_its_test_under_the_new_name(
    crm: str, tmp_path: Path
) -> None:
    (tmp_path / "integrations").mkdir()
    source = SOURCES[crm].package
    generated = written_files(tmp_path, crm)
    original = shipped(source)
    assert sorted(generated) == sorted(original)
    for path, text in generated.items():
        assert "acme" not in original[path], path  # so that renaming back is exact
        assert renamed(text, "acme", source) == original[path], path


def test_none_shares_sofa_s_migrations_and_handlers_package(tmp_path: Path) -> None:
    (tmp_path / "integrations").mkdir()
    generated = written_files(tmp_path, "none")
    original = shipped("sofa")
    for path in ("migrations.py", "handlers/__init__.py"):
        assert renamed(generated[path], "acme", "sofa") == original[path]
    assert sorted(generated) == sorted(original)


@pytest.mark.parametrize("crm", FLAVOURS)
def test_nothing_of_the_source_s_name_is_left(crm: str, tmp_path: Path) -> None:
    (tmp_path / "integrations").mkdir()
    for path, text in written_files(tmp_path, crm).items():
        assert not re.search("sofa", text, re.IGNORECASE), path
        assert "%%name%%" not in text, path
        # KeyCRM's own names stay: the client, the config, the steps, the simulated peer.
        assert not re.search(r"\bkeycrm\b", CRM_SPELLINGS.sub("", text)), path
        assert 'name="acme"' in text or path != "__init__.py"


def test_renamed_replaces_the_integration_s_name_only() -> None:
    text = (
        'name="sofa", integrations.sofa.config, sofa_calls, /sofa/webhook, happ call sofa, Sofa, test_sofa_x'
    )
    assert renamed(text, "sofa", "acme") == (
        'name="acme", integrations.acme.config, acme_calls, /acme/webhook, happ call acme, Sofa, test_sofa_x'
    )
    keycrm = SOURCES["keycrm"].crm_spellings
    text = 'name="keycrm" integrations.keycrm ctx.keycrm() "keycrm" "keycrm.update_card" keycrm_calls sims.keycrm'
    assert renamed(text, "keycrm", "acme", keycrm) == (
        'name="acme" integrations.acme ctx.keycrm() "keycrm" "keycrm.update_card" acme_calls sims.keycrm'
    )


def test_refuses_names_that_are_invalid_or_taken(tmp_path: Path) -> None:
    folder = tmp_path / "integrations"
    (folder / "acme").mkdir(parents=True)
    (folder / "acme" / "__init__.py").write_text("")
    cases = {
        "Acme": "is not a valid integration name",
        "9lives": "is not a valid integration name",
        "a-b": "is not a valid integration name",
        "class": "is a Python keyword",
        "happ": "is reserved",
        "happ_tools": "is reserved",
        "acme": "integration 'acme' exists already",
        "acme_eu": "would share table names with the integration 'acme'",
    }
    for name, message in cases.items():
        line = one_error_line(run(HAPP, "new-integration", name, "--dir", str(folder)))
        assert line.startswith("happ new-integration: ") and message in line, (name, line)
    line = one_error_line(run(HAPP, "new-integration", "sofa"))
    assert "integration 'sofa' exists already" in line and "keycrm" in line
    usage = run(HAPP, "new-integration", "fresh", "--crm", "salesforce", "--dir", str(folder))
    assert usage.returncode == 2 and "invalid choice: 'salesforce'" in one_error_line(usage)
    assert not (folder / "fresh").exists()

    written = run(HAPP, "new-integration", "fresh", "--crm", "none", "--dir", str(folder))
    assert written.returncode == 0, written.stderr
    assert written.stdout.startswith("wrote integration fresh (none):")
    assert (folder / "fresh" / "handlers" / "crm_postcall.py").is_file()
    assert (tmp_path / "tests" / "integrations" / "test_fresh.py").is_file()
    again = one_error_line(run(HAPP, "new-integration", "fresh", "--dir", str(folder)))
    assert "integration 'fresh' exists already" in again
