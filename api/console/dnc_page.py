"""Do-not-call: search the list, add a number, remove an entry (with a reason), import a CSV file.
Adding, removing and importing are the API's own (`api.routes.suppressions`), so an entry the
console adds is the one `POST /suppressions` would add, and a removal is logged the same way.

GET  /console/do-not-call?phone=&integration=&cursor=
POST /console/do-not-call                       phone_number, integration ("" = every one), reason
GET  /console/do-not-call/remove?entry=…        the confirmation, asking for a reason
POST /console/do-not-call/remove                entry, reason
POST /console/do-not-call/import                a CSV file (multipart), integration, reason

Numbers are masked on these pages. A row's remove link names its entry by a sealed reference (the
number and scope encrypted under a key derived from the admin token), so the page never holds the
whole number and a reference cannot be made up.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from api.console.auth import ConsoleRoute, admin_token
from api.console.render import page
from api.deps import RuntimeDep
from api.routes.suppressions import (
    SuppressionAdd,
    add_suppression,
    import_csv,
    integration_region,
    remove_suppression,
    served_integration,
)
from api.runtime import ApiRuntime
from happ_integ.calls.phones import mask_phone
from happ_integ.errors import HappError, NotFound, ValidationFailed
from happ_integ.stores.sessions import SESSION_TTL
from happ_integ.stores.suppressions import MAX_REASON, Suppression

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50
SOURCE = "console"
HERE = "/console/do-not-call"
Text = Annotated[str, Form(max_length=MAX_REASON)]


def _sealer(runtime: ApiRuntime) -> Fernet:
    admin = admin_token(runtime) or ""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"happ-console-dnc:" + admin.encode()).digest()))


def seal(runtime: ApiRuntime, entry: Suppression) -> str:
    plain = json.dumps({"phone": entry.phone, "integration": entry.integration}).encode()
    return _sealer(runtime).encrypt(plain).decode()


def unseal(runtime: ApiRuntime, reference: str) -> tuple[str, str | None]:
    try:
        data = json.loads(_sealer(runtime).decrypt(reference.encode(), ttl=int(SESSION_TTL.total_seconds())))
    except (InvalidToken, ValueError):
        raise NotFound("this entry reference is unknown or too old: search for the number again") from None
    return str(data["phone"]), data["integration"]


def _scope(integration: str | None) -> str:
    return "every integration" if integration is None else f"integration {integration}"


async def _listing(
    runtime: ApiRuntime, phone: str | None, integration: str | None, cursor: str | None
) -> dict[str, Any]:
    integration = served_integration(runtime, integration or None)
    rows, next_cursor = await runtime.resources.suppressions().list(
        phone or None,
        integration,
        cursor,
        PAGE,
        default_region=await integration_region(runtime, integration),
    )
    return {
        "entries": [{"entry": e, "ref": seal(runtime, e)} for e in rows],
        "next_cursor": next_cursor,
        "cursor": cursor,
        "phone": phone or "",
        "integration": integration or "",
    }


def _dnc_page(request: Request, runtime: ApiRuntime, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("form", {"phone_number": "", "integration": "", "reason": ""})
    return page(
        request,
        "dnc.html",
        status,
        title="Do-not-call",
        integrations=sorted(runtime.integrations),
        **context,
    )


@router.get("/do-not-call", response_class=HTMLResponse)
async def dnc(
    request: Request,
    runtime: RuntimeDep,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    integration: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    done: Annotated[Literal["added", "already", "removed"] | None, Query()] = None,
    number: Annotated[str | None, Query(pattern=r"^\+?[0-9*]{4,20}$")] = None,
    scope: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    notice = None
    if done and number:
        where = _scope(served_integration(runtime, scope or None))
        notice = {
            "added": f"{number} added to the do-not-call list of {where}.",
            "already": f"{number} was already on the do-not-call list of {where}.",
            "removed": f"{number} removed from the do-not-call list of {where}.",
        }[done]
    try:
        listing = await _listing(runtime, phone, integration, cursor)
    except ValidationFailed as exc:
        listing = {
            "entries": [],
            "next_cursor": None,
            "cursor": None,
            "phone": phone or "",
            "integration": "",
        }
        return _dnc_page(request, runtime, 422, search_error=exc.message, **listing)
    return _dnc_page(request, runtime, notice=notice, **listing)


@router.post("/do-not-call", response_class=HTMLResponse)
async def add(
    request: Request,
    runtime: RuntimeDep,
    phone_number: Annotated[str, Form(max_length=64)],
    reason: Text,
    integration: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {"phone_number": phone_number, "integration": integration, "reason": reason}
    try:
        body = SuppressionAdd(
            phone_number=phone_number.strip(),
            integration=integration or None,
            reason=reason.strip(),
            source=SOURCE,
        )
        answer = await add_suppression(body, Response(), runtime, None)
    except (ValidationError, ValidationFailed) as exc:
        return _dnc_page(
            request,
            runtime,
            422,
            add_error=_problem(exc),
            form=form,
            **await _listing(runtime, None, None, None),
        )
    return _done("added" if answer.created else "already", answer.phone_masked, answer.integration)


@router.get("/do-not-call/remove", response_class=HTMLResponse)
async def confirm_remove(
    request: Request, runtime: RuntimeDep, entry: Annotated[str, Query(max_length=1024)]
) -> HTMLResponse:
    phone, integration = unseal(runtime, entry)
    return page(
        request,
        "dnc_remove.html",
        title="Remove from do-not-call",
        ref=entry,
        masked=mask_phone(phone),
        scope=_scope(integration),
    )


@router.post("/do-not-call/remove")
async def remove(
    request: Request,
    runtime: RuntimeDep,
    entry: Annotated[str, Form(max_length=1024)],
    reason: Annotated[str, Form(min_length=1, max_length=MAX_REASON)],
) -> RedirectResponse:
    phone, integration = unseal(runtime, entry)
    removed = await remove_suppression(request, phone, runtime, None, integration, reason.strip())
    return _done("removed", removed.phone_masked, removed.integration)


@router.post("/do-not-call/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File()],
    integration: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
) -> HTMLResponse:
    try:
        answer = await import_csv(runtime, await file.read(), integration or None, reason.strip() or None)
    except HappError as exc:
        return _dnc_page(
            request,
            runtime,
            exc.status_code,
            import_error=exc.message,
            **await _listing(runtime, None, None, None),
        )
    return _dnc_page(request, runtime, imported=answer, **await _listing(runtime, None, None, None))


def _problem(exc: ValidationError | ValidationFailed) -> str:
    if isinstance(exc, ValidationFailed):
        return exc.message
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in exc.errors())


def _done(done: str, masked: str, integration: str | None) -> RedirectResponse:
    """Back to the list, which says what was done (from fixed sentences, never text from the URL)."""
    query = urlencode({"done": done, "number": masked, **({"scope": integration} if integration else {})})
    return RedirectResponse(f"{HERE}?{query}", 303)
