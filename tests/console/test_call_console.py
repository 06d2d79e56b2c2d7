"""A call in the console: from Today's latest calls to the call's page, which shows the whole
number (list pages mask it), the attempt, what the agent got from the CRM, the transcript, the
analysis, the CRM writes and the workflow's id; and the pages fit a phone's width."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.console.conftest import BROWSER_ZONE, sign_in
from tests.e2e.call_stack import CallStack, phone


async def test_open_a_call_and_read_its_transcript_and_analysis(page: Any, console_stack: CallStack) -> None:
    number = phone(8_000)
    console_stack.add_leads([number])
    (call_id,) = await console_stack.originate([number])
    await console_stack.until_status(call_id, "completed", 60)

    await sign_in(page, "/console/today")
    link = page.get_by_role("link", name=call_id)
    await link.wait_for()  # at the latest by the next refresh
    assert number not in await page.content()
    # Focus in a live part holds its refresh, so a keyboard user keeps their place.
    await link.focus()
    await asyncio.sleep(3.5)
    assert await page.evaluate("document.activeElement.textContent") == call_id
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(f"/console/sofa/calls/{call_id}$"))

    assert await page.get_by_role("heading", name=f"Call {call_id}").is_visible()
    text = await page.locator("main").inner_text()
    assert number in text  # whole, here only
    assert "Attempt 1: answered" in text
    assert "Лід 8000" in text  # client_name, from the CRM lookup
    transcript = page.get_by_role("region", name="Transcript")
    assert "Так, слухаю." in await transcript.inner_text()
    analysis = page.get_by_role("region", name="Analysis")
    analysed = await analysis.inner_text()
    assert "interested" in analysed
    assert "Клієнт зацікавлений, просить передзвонити завтра." in analysed
    writes = await page.get_by_role("region", name="CRM writes").inner_text()
    assert "status, call_log, comment" in writes
    assert "crm-postcall" in writes
    assert f"sofa:call:{call_id}" in text
    # Times are shown in the browser's zone (Kyiv here), the UTC moment kept as the tooltip.
    first = page.locator("main time[datetime]").first
    moment = datetime.fromisoformat(await first.get_attribute("datetime"))
    local = moment.astimezone(ZoneInfo(BROWSER_ZONE))
    hours = int(local.utcoffset().total_seconds()) // 3600  # type: ignore[union-attr]
    assert await first.inner_text() == f"{local:%Y-%m-%d %H:%M:%S} GMT+{hours}"
    assert await first.get_attribute("title") == f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"

    await page.set_viewport_size({"width": 390, "height": 844})
    for path in (None, "/console/today", "/console/campaigns", "/console/do-not-call"):
        if path:
            await page.goto(path)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path or 'the call page'} is {overflow} px wider than a phone"
