"""Signing in to the console: nothing is shown without a session (a page sends the browser to the
sign-in form, an htmx fragment answers 401, a form without the session's CSRF token is refused),
a wrong admin token is told, the right one opens Today, and signing out ends the session."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.console.conftest import sign_in
from tests.e2e.call_stack import CallStack


async def test_without_a_session_every_page_and_fragment_is_refused(console_stack: CallStack) -> None:
    async with httpx.AsyncClient(base_url=console_stack.base) as http:
        for path in (
            "/console/today",
            "/console/campaigns",
            "/console/do-not-call",
            "/console/sofa/calls/c_x",
        ):
            resp = await http.get(path)
            assert resp.status_code == 303, (path, resp.status_code)
            assert resp.headers["location"].startswith("/console/login?next=")
        fragment = await http.get("/console/today/live/sofa", headers={"HX-Request": "true"})
        assert fragment.status_code == 401
        assert fragment.headers["HX-Redirect"] == "/console/login"
        form = await http.post("/console/do-not-call", data={"phone_number": "+380994829573", "reason": "x"})
        assert form.status_code == 303  # to the sign-in page: nothing was added
        assert (await http.get("/console/static/htmx.min.js")).status_code == 200
        assert (await http.get("/console/static/htmx.LICENSE")).status_code == 404


async def test_sign_in_with_the_keyboard_then_sign_out(page: Any, console_stack: CallStack) -> None:
    await page.goto("/console/campaigns")
    await page.wait_for_url(re.compile(r"/console/login\?next="))
    # The token field has the focus: type, Enter.
    await page.keyboard.type("not-the-admin-token")
    await page.keyboard.press("Enter")
    assert await page.get_by_role("alert").inner_text() == "That is not the admin token."

    await page.get_by_label("Admin token").fill("")
    await sign_in(page, "/console/today")
    assert await page.get_by_role("heading", name="sofa").is_visible()
    assert await page.get_by_role("heading", name="Right now").is_visible()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "happ_console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"

    # A form posted without the session's CSRF token changes nothing.
    async with httpx.AsyncClient(
        base_url=console_stack.base, cookies={cookie["name"]: cookie["value"]}
    ) as http:
        refused = await http.post(
            "/console/do-not-call", data={"phone_number": "+380994829570", "reason": "forged"}
        )
        assert refused.status_code == 403
        listed = await console_stack.resources.suppressions().list("+380994829570")
        assert listed[0] == []

    # Today, open in a second tab, refreshes its live part every 3 s; once the session ends there,
    # the refresh is refused (401 + HX-Redirect) and htmx takes that tab to the sign-in page.
    other = await page.context.new_page()
    await other.goto("/console/today")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/console/login\?signed_out=true"))
    assert await page.get_by_role("status").inner_text() == "Signed out."
    await other.wait_for_url(re.compile(r"/console/login"), timeout=10_000)
    # The old cookie opens nothing any more, on any replica.
    async with httpx.AsyncClient(
        base_url=console_stack.base, cookies={cookie["name"]: cookie["value"]}
    ) as http:
        assert (await http.get("/console/today")).status_code == 303
