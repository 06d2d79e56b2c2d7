"""The console's routes: signing in and out, its static files, and every page (each module's router).

GET  /console                   → Today, or the sign-in page
GET  /console/login?next=…      the sign-in form
POST /console/login             the admin token → a session cookie, then `next`
POST /console/logout            (CSRF token) the session ends, on every replica
GET  /console/static/{name}     htmx, the stylesheet and the console's few lines of script
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api.console import call_page, campaign_pages, dnc_page, today
from api.console.auth import (
    HOME,
    LOGIN,
    ConsoleRoute,
    find_session,
    forget_cookie,
    safe_next,
    session_cookie,
    sign_in,
    sign_out,
    signed_in,
)
from api.console.render import STATIC, page, security_headers
from api.deps import RuntimeDep

# Served by name only: nothing else under static/ or beside it is reachable. htmx.min.js is htmx
# 2.0.11 as published on npm (`npm pack htmx.org@2`, dist/htmx.min.js, sha256 d6fdc75f…4000f717),
# its licence (0BSD) beside it in htmx.LICENSE; update both together.
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "console.js": "text/javascript",
    "console.css": "text/css",
}

public = APIRouter(include_in_schema=False)
guarded = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@public.get("")
async def root(request: Request, runtime: RuntimeDep) -> Response:
    session = await find_session(request, runtime)
    return security_headers(RedirectResponse(HOME if session else LOGIN, 303))


@public.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request,
    runtime: RuntimeDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    signed_out: bool = False,
) -> Response:
    if await find_session(request, runtime) is not None:
        return security_headers(RedirectResponse(safe_next(next), 303))
    message = "Signed out." if signed_out else None
    return page(request, "login.html", title="Sign in", next=safe_next(next), problem=None, message=message)


@public.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    attempt = await sign_in(request, runtime, token)
    if attempt.session_id is None:
        refused = page(
            request,
            "login.html",
            attempt.status,
            title="Sign in",
            next=safe_next(next),
            problem=attempt.problem,
            message=None,
        )
        if attempt.retry_after:
            refused.headers["Retry-After"] = str(attempt.retry_after)
        return refused
    response = RedirectResponse(safe_next(next), 303)
    session_cookie(response, request, attempt.session_id)
    return security_headers(response)


@guarded.post("/logout")
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    await sign_out(runtime, signed_in(request).session_id)
    response = RedirectResponse(f"{LOGIN}?signed_out=true", 303)
    forget_cookie(response, request)
    return response


@public.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("not found", 404, media_type="text/plain")
    return FileResponse(
        STATIC / name,
        media_type=f"{media_type}; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


console_router = APIRouter()
for router in (public, guarded, today.router, campaign_pages.router, call_page.router, dnc_page.router):
    console_router.include_router(router, prefix="/console")
