"""The `happ` command as an operator runs it: `.venv/bin/happ …` as a process of its own, against a
stack of real servers (a database of its own on the session's PostgreSQL, a Temporal dev server,
the gateway over HTTP, the simulated voice assistant, ElevenLabs and NetHunt playing every call,
and a `happ worker` process)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.calls import Play
from tests.e2e.call_stack import CallStack, start_call_stack

HAPP = str(Path(sys.executable).parent / "happ")
WEB_UI = "http://ui.example:8233"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_line(self) -> str:
        """The one line a failed command prints on stderr (and nothing on stdout)."""
        assert self.code != 0, f"exit 0\nstdout:\n{self.out}\nstderr:\n{self.err}"
        lines = self.err.splitlines()
        assert len(lines) == 1, (
            f"exit {self.code}: expected one line on stderr, got:\n{self.err}\nstdout:\n{self.out}"
        )
        return lines[0]

    def ok(self) -> Result:
        assert self.code == 0, f"exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        assert self.err == "", self.err
        return self


async def happ(
    *args: str,
    env: Mapping[str, str],
    cwd: Path,
    input: str | None = None,
    timeout: float = 120,
) -> Result:
    """Run `happ …` without blocking the event loop (the gateway and simulator of the stack run in it)."""
    proc = await asyncio.create_subprocess_exec(
        HAPP,
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class Cli:
    """The stack and the environment `happ` runs with against it."""

    stack: CallStack
    env: dict[str, str]
    cwd: Path

    async def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120, **env: str
    ) -> Result:
        return await happ(*args, env={**self.env, **env}, cwd=self.cwd, input=input, timeout=timeout)

    def without(self, *names: str) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k not in names}


def cli_env(base: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """`base` with nothing a developer's own shell or `happ dev` could add."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAPP_", "DATABASE_URL", "TEMPORAL_"))}
    return {
        **env,
        **{k: v for k, v in base.items() if k.startswith(("HAPP_", "DATABASE_URL", "TEMPORAL_"))},
        "HAPP_DATA_DIR": str(data_dir),
        "HAPP_WEB_UI_URL": WEB_UI,
    }


@pytest.fixture(scope="package")
async def cli(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cli]:
    stack = await start_call_stack(
        pg_url, tmp_path_factory.mktemp("cli-logs"), Play.answered(20, talk_seconds=0.2)
    )
    try:
        stack.start_worker()
        cwd = tmp_path_factory.mktemp("cli-cwd")
        env = cli_env(stack.env, cwd / ".happ")
        env["HAPP_API_URL"] = stack.base
        yield Cli(stack, env, cwd)
    finally:
        await stack.close()
