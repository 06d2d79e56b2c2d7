"""A real browser for the console's tests and screenshots: Debian's Chromium, driven by
Playwright for Python (whose own browser download cannot work here).

    path = chromium_or_reason()       # "/usr/bin/chromium", installed with apt-get when missing
    browser = await launch(playwright, path)

`make test` needs nothing installed by hand: when /usr/bin/chromium is missing and we are root,
`apt-get install chromium` runs (with `apt-get update` first when the package lists are stale),
within INSTALL_SECONDS. Only where no browser can be installed do the tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SECONDS = 600
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class NoBrowser(Exception):
    """No Chromium, and none could be installed: the message says why."""


def _run(command: list[str], deadline: float) -> tuple[bool, str]:
    left = deadline - time.monotonic()
    if left <= 0:
        return False, f"{' '.join(command)}: no time left"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=left, check=False)
    except subprocess.TimeoutExpired:
        return False, f"{' '.join(command)}: still running after {INSTALL_SECONDS} s"
    return done.returncode == 0, (done.stdout + done.stderr)[-1500:]


def chromium() -> str:
    """The Chromium binary, installed from Debian's packages when missing (root only); NoBrowser
    when it cannot be had."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    if shutil.which("apt-get") is None:
        raise NoBrowser(f"{CHROMIUM} is missing and this machine has no apt-get to install Debian's chromium")
    if os.geteuid() != 0:
        raise NoBrowser(
            f"{CHROMIUM} is missing: install it with `sudo apt-get install -y chromium` (not root here)"
        )
    deadline = time.monotonic() + INSTALL_SECONDS
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    ok, output = _run(install, deadline)
    if not ok:
        # A fresh machine's package lists may be missing or stale: read them once, then try again.
        updated, update_output = _run(["apt-get", "update", "-q"], deadline)
        ok, output = _run(install, deadline) if updated else (False, update_output)
    if not ok or not CHROMIUM.exists():
        raise NoBrowser(f"apt-get could not install chromium:\n{output}")
    return str(CHROMIUM)


async def launch(playwright: Any, path: str) -> Any:
    """Chromium at `path`, headless, with nothing of its own reaching the network."""
    return await playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
