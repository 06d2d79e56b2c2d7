"""A campaign in the console while the simulator plays it: its progress moves on the campaign's
page (htmx refreshes it), numbers stay masked, Pause (after its confirmation page) holds every new
dial, Resume goes on, and the finished campaign offers Retry (nobody to retry here) and its report."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from tests.console.conftest import create_campaign, sign_in
from tests.e2e.call_stack import CallStack, phone

RECIPIENTS = 10
# A grant that crossed the pause on its way to a call may still dial just after the answer.
GRACE_SECONDS = 1.0
HOLD_SECONDS = 3.0


def ended(text: str) -> int:
    match = re.match(r"(\d+) of (\d+) ended", text)
    assert match, text
    return int(match.group(1))


async def progress(page: Any) -> str:
    return str(await page.locator("#campaign-progress").inner_text())


async def until_progress(page: Any, test: Any, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while not test(text := await progress(page)):
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.25)
    return text


async def test_watch_a_campaign_pause_it_and_see_no_new_dial(page: Any, console_stack: CallStack) -> None:
    numbers = [phone(7_000 + n) for n in range(RECIPIENTS)]
    campaign_id = await create_campaign(console_stack, "Console watch", numbers, max_concurrency=2)

    def dialled() -> int:
        return sum(1 for call in console_stack.sims.voice.calls if call.phone_number in numbers)

    await sign_in(page, "/console/campaigns")
    card = page.locator("li.campaign-card", has_text="Console watch")
    assert "of 10 ended" in await card.locator(".progress-text").inner_text()
    await card.get_by_role("link", name="Console watch").click()
    await page.wait_for_url(re.compile(f"/console/sofa/campaigns/{campaign_id}$"))

    # The progress moves without a reload: the live part refreshes every 3 s.
    first = ended(await progress(page))
    await until_progress(page, lambda t: ended(t) >= max(first + 1, 2), 40)
    html = await page.content()
    assert not any(n in html for n in numbers), "a whole number on a list page"
    assert "+38099*****" in html

    await page.get_by_role("link", name="Pause…").click()
    assert await page.get_by_role("heading", name="Pause “Console watch”?").is_visible()
    await page.get_by_role("button", name="Pause the campaign").click()
    await page.wait_for_url(re.compile(r"\?done=pause"))
    assert await page.get_by_role("status").first.inner_text() == "Paused: nothing new is dialled."
    assert "paused" in await page.locator("#campaign-live .meta").inner_text()

    await asyncio.sleep(GRACE_SECONDS)
    held = dialled()
    await asyncio.sleep(HOLD_SECONDS)
    assert dialled() == held, "a recipient was dialled while the campaign was paused"
    assert held < RECIPIENTS, "the campaign ended before the pause held anything back"

    await page.get_by_role("link", name="Resume…").click()
    await page.get_by_role("button", name="Resume the campaign").click()
    await page.wait_for_url(re.compile(r"\?done=resume"))
    await until_progress(page, lambda t: t.startswith(f"{RECIPIENTS} of {RECIPIENTS} ended"), 60)
    assert dialled() == RECIPIENTS
    # Retry after the finish: every recipient completed, so nobody gets a new call.
    await page.get_by_role("link", name="Retry…").click()
    await page.get_by_role("button", name="Retry the campaign").click()
    await page.wait_for_url(re.compile(r"\?done=retry&retried=0"))
    assert await page.get_by_role("status").first.inner_text() == "No recipient to retry."
    assert await page.get_by_role("link", name="Report CSV").get_attribute("href") == (
        f"/console/sofa/campaigns/{campaign_id}/report.csv"
    )
    async with page.expect_download() as download:
        await page.get_by_role("link", name="Report CSV").click()
    report = await (await download.value).path()
    lines = open(report, encoding="utf-8").read().splitlines()
    assert len(lines) == RECIPIENTS + 1 and lines[0].startswith("id,number,status")
