"""The console's templates (Jinja2, autoescaped) and the headers every console answer carries.

    return page(request, "today.html", integrations=...)        # a whole page
    return page(request, "_today_live.html", ...)               # an htmx fragment: same call

Pages load only what the gateway serves itself (`/console/static/…`): the Content-Security-Policy
allows scripts and styles from this origin alone, no inline script, style or `eval` (htmx runs
with `allowEval` off).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from happ_integ.calls.phones import mask_phone

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

R = TypeVar("R", bound=Response)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# What each status is called on screen, and the mark beside it (the text alone says it all: the
# colour and the mark only help the eye).
STATUS_MARKS = {
    "pending": "○",
    "scheduled": "◷",
    "queued": "…",
    "dialing": "☎",
    "in_progress": "●",
    "waiting_postcall": "◔",
    "analyzing": "◑",
    "completed": "✓",
    "exhausted": "↻",
    "failed": "✗",
    "cancelled": "⊘",
    "expired": "⌛",
    "suppressed": "⛔",
    "running": "▶",
    "paused": "❚❚",
    "finished": "✓",
}


def label(value: object) -> str:
    """`in_progress` → `in progress`."""
    return str(value).replace("_", " ") if value is not None else ""


def when(value: datetime | str | None) -> str:
    """A moment in UTC, to the second: what a page shows without script; console.js shows it in
    the browser's own zone, keeping this text as the tooltip."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat()


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    whole = round(value)
    return f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{value:.0f} s"


def shown(value: object) -> str:
    """A value from a handler's answer or the analysis, as words: None is "–", a bool yes or no."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, dict):
        return as_json(value)
    return str(value)


def as_json(value: object, longest: int = 400) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= longest else text[: longest - 1] + "…"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "svg"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    masked=mask_phone, label=label, when=when, iso=iso, seconds=seconds, shown=shown, as_json=as_json
)
_env.globals.update(marks=STATUS_MARKS, percent=percent)


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """`template` rendered with the signed-in session (its CSRF token, for forms) and `context`."""
    session = getattr(request.state, "console", None)
    context.setdefault("title", "")
    body = render(template, request=request, session=session, path=request.url.path, **context)
    return security_headers(HTMLResponse(body, status))


def security_headers(response: R) -> R:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # Pages name numbers and transcripts: no shared cache, and no copy after signing out.
    response.headers.setdefault("Cache-Control", "no-store")
    return response
