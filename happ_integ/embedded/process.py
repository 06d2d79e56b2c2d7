"""Child processes that die with their parent and stop within a deadline."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux only)."""
    if os.uname().sysname == "Linux":
        _die_with_parent()


def parent_is(name: str) -> bool:
    try:
        return Path(f"/proc/{os.getppid()}/comm").read_text().strip() == name
    except OSError:
        return False


def _die_with_parent() -> None:
    # Runs in the child after the uid switch, so the kernel keeps the setting: if `happ dev`
    # is killed outright (SIGKILL), its servers get SIGTERM instead of living on as orphans.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: list[str], *, log_path: Path, user: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
            env=env,
            preexec_fn=_die_with_parent if os.uname().sysname == "Linux" else None,
        )
    finally:
        log.close()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Ask politely, then insist: the process is gone when this returns."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    host: str, port: int, proc: subprocess.Popen[bytes], what: str, log_path: Path, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise RuntimeError(
                f"{what} exited with code {proc.returncode} while starting; log {log_path}:\n{tail}"
            )
        if port_is_open(host, port):
            return
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f}s; see {log_path}")


# Ports handed out below the kernel's ephemeral range (Linux: 32768-60999). A port the kernel picks
# for `bind(0)` comes from that range, and so do the ports every other process opens with port 0
# meanwhile, the Temporal dev server's own internal listeners among them: a port chosen there can
# be taken by another process before the one it is meant for binds it (seen as the Web UI's
# "address already in use"). Below the range only another caller of `free_port` could take it.
_PORTS = range(20000, 32000)
_chooser = random.Random()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on now, outside the kernel's ephemeral range."""
    for _ in range(200):
        port = _chooser.choice(_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
