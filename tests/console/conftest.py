"""One dev stack for every console test (package scope): the gateway over real HTTP, a worker
process, the Temporal dev server, PostgreSQL and the simulated peers playing each call
(tests/e2e/call_stack.py), and one headless Chromium; each test gets a fresh browser context
(no cookie of another test) at 1280×800."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulator.calls import Play
from tests.console.browser import INSTALL_SECONDS, NoBrowser, chromium, launch
from tests.e2e.call_stack import ADMIN, CallStack, start_call_stack

# Every call answers and talks about a second: a campaign's progress is seen moving, and pausing
# it holds recipients back.
PLAY = Play.answered(30, talk_seconds=1.0)
AUTH = {"Authorization": f"Bearer {ADMIN}"}
BROWSER_ZONE = "Europe/Kyiv"  # the zone the test browser lives in


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first console test may wait for apt-get to install Chromium (INSTALL_SECONDS at most)
    before its stack starts: more than the suite's usual 180 s per test."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.timeout(INSTALL_SECONDS + 180))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        return chromium()
    except NoBrowser as exc:
        pytest.skip(f"the console's browser tests need Chromium: {exc}")


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="Playwright for Python is missing: pip install -e '.[test]'"
    )
    playwright = await playwright_api.async_playwright().start()
    browser = await launch(playwright, chromium_path)
    yield browser
    await browser.close()
    await playwright.stop()


@pytest.fixture(scope="package")
async def console_stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(pg_url, tmp_path_factory.mktemp("console-logs"), PLAY)
    stack.start_worker()
    try:
        yield stack
    finally:
        await stack.close()


@pytest.fixture
async def page(browser: Any, console_stack: CallStack) -> AsyncIterator[Any]:
    # An operator in Kyiv: the console shows times in the browser's zone, not the server's UTC.
    context = await browser.new_context(
        base_url=console_stack.base, viewport={"width": 1280, "height": 800}, timezone_id=BROWSER_ZONE
    )
    context.set_default_timeout(20_000)
    tab = await context.new_page()
    # Nothing the console serves may break its own Content-Security-Policy or throw.
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    await context.close()
    assert not problems, problems


async def sign_in(page: Any, where: str = "/console/today") -> None:
    """Open `where`, land on the sign-in form, sign in with the keyboard, and arrive at `where`."""
    await page.goto(where)
    await page.wait_for_url(re.compile(r"/console/login"))
    await page.get_by_label("Admin token").fill(ADMIN)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(re.escape(where.split("?")[0])))


async def create_campaign(stack: CallStack, name: str, numbers: list[str], **settings: Any) -> str:
    stack.add_leads(numbers)
    body = {
        "name": name,
        "recipients": [{"phone_number": n, "id": f"lead-{i + 1}"} for i, n in enumerate(numbers)],
        **settings,
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["campaign_id"])


async def wait_for(test: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await test():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)
