"""`make console-shots`: a screenshot of each console page, written to docs/console/ for the README.

    python -m tests.console.shots [OUT_DIR]

Starts the same stack as the console's tests (PostgreSQL in a temporary folder, the Temporal dev
server, the gateway, a worker, the simulated peers and analysis model), plays a few calls and a
campaign with answered, unanswered, busy and short calls, pauses the campaign midway, puts a few
numbers on the do-not-call list, then photographs each page at 1280×800 (and Today at a phone's
width) in Debian's Chromium. About a minute.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port
from simulator.calls import Play, SimCall
from tests.console.browser import chromium, launch
from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _talk(*lines: str) -> list[dict[str, Any]]:
    return [
        {"role": ("agent", "user")[i % 2], "message": m, "time_in_call_secs": 4.0 * i}
        for i, m in enumerate(lines)
    ]


INTERESTED = Play.answered(
    95,
    talk_seconds=0.6,
    summary="Клієнт зацікавлений вебінаром і просить надіслати посилання.",
    transcript=_talk(
        "Добрий день! Це Олена з компанії «Софа». Вам зручно говорити?",
        "Так, слухаю.",
        "Ми проводимо вебінар 12 грудня про нові моделі диванів. Вам цікаво?",
        "Так, цікаво, надішліть посилання.",
        "Дякую! Надішлю посилання повідомленням. Гарного дня!",
    ),
)
CALLBACK = Play.answered(
    41,
    talk_seconds=0.6,
    transcript=_talk(
        "Добрий день! Це Олена з компанії «Софа». Вам зручно говорити?",
        "Зараз ні, передзвоніть завтра.",
        "Звісно, передзвоню завтра. До побачення!",
    ),
)
NOT_INTERESTED = Play.answered(
    18,
    talk_seconds=0.6,
    transcript=_talk("Добрий день! Це Олена з компанії «Софа».", "Дякую, мені не цікаво."),
)
# How each number's calls play, by the number's last digit.
PLAYS = {
    0: [INTERESTED],
    1: [CALLBACK],
    2: [Play.no_answer(), INTERESTED],
    3: [Play.busy(), Play.busy()],
    4: [NOT_INTERESTED],
    5: [Play.short(2), INTERESTED],
    6: [INTERESTED],
    7: [Play.no_answer(), Play.no_answer()],
    8: [INTERESTED],
    9: [Play.answered(60, talk_seconds=0.6)],
}


def _play(stack: CallStack, scripts: dict[str, list[Play]], call: SimCall) -> None:
    script = scripts.setdefault(call.phone_number, list(PLAYS[int(call.phone_number[-1])]))
    stack.sims.play_in_background(call, script.pop(0) if len(script) > 1 else script[0])


async def _prepare(stack: CallStack) -> tuple[str, str]:
    """Some calls, a campaign paused midway, a few do-not-call entries: `(campaign_id, a call id)`."""
    scripts: dict[str, list[Play]] = {}
    stack.sims.voice.on_originate = lambda call: _play(stack, scripts, call)
    singles = [phone(4_000 + n) for n in range(10)]
    stack.add_leads(singles)
    call_ids = await stack.originate(singles)
    await stack.until_all(call_ids, {"completed", "exhausted"}, seconds=90)

    recipients = [phone(5_000 + n) for n in range(24)]
    stack.add_leads(recipients)
    body = {
        "name": "Webinar 12 Dec",
        "max_concurrency": 2,
        "recipients": [{"phone_number": n, "id": f"lead-{i + 1:03d}"} for i, n in enumerate(recipients)],
    }
    resp = await stack.http.post(f"/{stack.integration}/campaigns", json=body, headers=AUTH)
    assert resp.status_code == 201, resp.text
    campaign_id = resp.json()["campaign_id"]
    others = [phone(6_000 + n) for n in range(6)]
    stack.add_leads(others)
    small = {"name": "Callbacks, November", "recipients": [{"phone_number": n} for n in others]}
    done = await stack.http.post(f"/{stack.integration}/campaigns", json=small, headers=AUTH)
    assert done.status_code == 201, done.text

    deadline = time.monotonic() + 90
    while True:
        view = (await stack.http.get(f"/{stack.integration}/campaigns/{campaign_id}", headers=AUTH)).json()
        ended = sum(n for s, n in view["counts"].items() if s in {"completed", "exhausted", "failed"})
        if ended >= 9 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.3)
    paused = await stack.http.post(f"/{stack.integration}/campaigns/{campaign_id}/pause", headers=AUTH)
    assert paused.status_code == 200, paused.text

    for number, scope, reason in (
        ("+380994829573", None, "asked not to be called"),
        ("+380671234567", "sofa", "complained about the calls"),
        ("+380501112233", None, "a company switchboard"),
    ):
        entry = {"phone_number": number, "reason": reason, **({"integration": scope} if scope else {})}
        assert (await stack.http.post("/suppressions", json=entry, headers=AUTH)).status_code in (200, 201)
    return campaign_id, call_ids[0]


async def _shoot(stack: CallStack, campaign_id: str, call_id: str, out: Path) -> list[Path]:
    from playwright.async_api import async_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium())
        context = await browser.new_context(base_url=stack.base, viewport={"width": 1280, "height": 800})
        page = await context.new_page()

        async def shot(name: str, full: bool = True) -> None:
            path = out / f"{name}.png"
            await page.screenshot(path=str(path), full_page=full)
            written.append(path)

        await page.goto("/console/today")
        await shot("sign-in", full=False)
        await page.get_by_label("Admin token").fill(ADMIN)
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile("/console/today"))
        await shot("today")
        await page.goto("/console/campaigns")
        await shot("campaigns")
        await page.goto(f"/console/sofa/campaigns/{campaign_id}")
        await shot("campaign")
        await page.goto(f"/console/sofa/campaigns/{campaign_id}/resume")
        await shot("campaign-confirm", full=False)
        await page.goto(f"/console/sofa/calls/{call_id}")
        await shot("call")
        await page.goto("/console/do-not-call")
        await shot("do-not-call")
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto("/console/today")
        await shot("today-phone")
        await browser.close()
    return written


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="happ-console-shots-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
        postgres.start()
        # The call page links its workflow in the Web UI of `happ dev`.
        os.environ.setdefault("HAPP_TEMPORAL_UI_URL", "http://127.0.0.1:8233")
        stack = await start_call_stack(
            postgres.url,
            Path(tmp) / "logs",
            INTERESTED,
            llm=True,
            handling={"concurrency_limit": 4, "max_attempts": 2, "retry_delays_seconds": [1]},
        )
        try:
            stack.start_worker()
            campaign_id, call_id = await _prepare(stack)
            for path in await _shoot(stack, campaign_id, call_id, out):
                print(f"{path} ({path.stat().st_size // 1024} KiB)")
        finally:
            await stack.close()
            postgres.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
