"""Do-not-call in the console: add a number (its calls are then suppressed, never dialled), find
it, remove it with a reason, and import a CSV file; numbers stay masked on the page."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import sign_in
from tests.e2e.call_stack import CallStack

NUMBER = "+380994829571"
MASKED = "+38099*****71"


async def test_add_a_number_find_it_remove_it_and_import_a_file(page: Any, console_stack: CallStack) -> None:
    await sign_in(page, "/console/do-not-call")
    add = page.locator("form", has=page.get_by_role("button", name="Add to the list"))
    # A number that is not one is refused, saying so, and the form keeps what was typed.
    await add.get_by_label("Number").fill("12")
    await add.get_by_label("Reason").fill("a typo")
    await page.get_by_role("button", name="Add to the list").click()
    assert "number" in (await page.get_by_role("alert").inner_text()).lower()
    assert await add.get_by_label("Reason").input_value() == "a typo"

    await add.get_by_label("Number").fill(NUMBER)
    await add.get_by_label("Applies to").select_option("sofa")
    await add.get_by_label("Reason").fill("asked not to be called (console test)")
    await page.get_by_role("button", name="Add to the list").click()
    await page.wait_for_url(re.compile(r"\?done=added"))
    assert await page.get_by_role("status").first.inner_text() == (
        f"{MASKED} added to the do-not-call list of integration sofa."
    )
    assert NUMBER not in await page.content()
    entry = await console_stack.resources.suppressions().is_suppressed(NUMBER, "sofa")
    assert entry is not None and entry.source == "console"

    # Its call ends `suppressed`, and nothing reaches the voice assistant.
    console_stack.add_leads([NUMBER])
    (call_id,) = await console_stack.originate([NUMBER])
    await console_stack.until_status(call_id, "suppressed", 30)
    assert not any(c.phone_number == NUMBER for c in console_stack.sims.voice.calls)

    search = page.get_by_role("search")
    await search.get_by_label("Number").fill(NUMBER)
    await search.get_by_role("button", name="Search").click()
    table = page.locator("table.entries")
    assert "1 entry for this number" in await table.locator("caption").inner_text()
    assert MASKED in await table.inner_text()

    await table.get_by_role("link", name=re.compile("Remove")).click()
    assert await page.get_by_role("heading", name=f"Remove {MASKED} from the do-not-call list?").is_visible()
    await page.get_by_label("Reason").fill("added by mistake")
    await page.get_by_role("button", name="Remove from the list").click()
    await page.wait_for_url(re.compile(r"\?done=removed"))
    assert (
        "removed from the do-not-call list of integration sofa"
        in await page.get_by_role("status").first.inner_text()
    )
    assert await console_stack.resources.suppressions().is_suppressed(NUMBER, "sofa") is None

    await page.get_by_label("CSV file", exact=True).set_input_files(
        {
            "name": "dnc.csv",
            "mimeType": "text/csv",
            "buffer": b"phone_number,reason\n+380994829581,imported in a test\nnot a number,x\n",
        }
    )
    await page.get_by_role("button", name="Import").click()
    assert (
        "Imported 2 rows: 1 added, 0 already on the list, 1 rejected."
        in await page.get_by_role("status").first.inner_text()
    )
    assert await console_stack.resources.suppressions().is_suppressed("+380994829581", None) is not None
