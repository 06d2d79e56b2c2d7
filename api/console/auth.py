"""Signing in to the console, and the guard every console page, fragment and form passes.

    router = APIRouter(route_class=ConsoleRoute)   # its routes answer only a signed-in browser
    session = signed_in(request)                   # inside such a route: session.csrf for its forms

The session is the codec's mechanism (`happ_integ.stores.sessions`) with a purpose of its own
(`console`): a random id in the cookie `happ_console_session`, its digest in PostgreSQL (so every
gateway replica accepts it), 12 hours, ended by signing out or by a new HAPP_ADMIN_TOKEN. Wrong
admin tokens are throttled as the codec's are (per client address and overall).

The cookie is `HttpOnly` (no script reads it), `Path=/console`, `Secure` (except plain http to a
loopback name, as the codec's), and `SameSite=Lax`, not Strict: an operator opens call links
from chat and e-mail, and Strict would withhold the cookie from those navigations and ask for the
token every time. Nothing a GET does changes anything; every POST (pause, resume, cancel, retry,
do-not-call add/remove/import, sign-out) must carry the session's CSRF token in the form field
`csrf` (or the header `X-CSRF-Token`): an HMAC of the session id under the admin token, which a
page of another origin can neither read nor compute. Lax also keeps the cookie off cross-site
POSTs, so a forged form fails twice over. Without a session a page answers a redirect to the
sign-in page and an htmx fragment 401 with `HX-Redirect` (htmx then loads the sign-in page).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.console.render import page, security_headers
from api.deps import runtime_of
from api.errors import as_happ_error
from api.routes.codec import secure_cookie
from api.runtime import ApiRuntime
from happ_integ.errors import DependencyUnavailable
from happ_integ.stores.sessions import SESSION_TTL, SessionStore, SignInThrottle, token_id

COOKIE = "happ_console_session"
COOKIE_PATH = "/console"
PURPOSE = "console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
HOME = "/console/today"
LOGIN = "/console/login"


@dataclass(frozen=True)
class ConsoleSession:
    session_id: str
    csrf: str


def admin_token(runtime: ApiRuntime) -> str | None:
    token = runtime.settings.admin_token
    return token.get_secret_value() if token is not None else None


def csrf_token(admin: str, session_id: str) -> str:
    """The session's CSRF token: derived, so nothing more is stored, and useless without the cookie."""
    return hmac.new(admin.encode(), b"happ-console-csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path of ours, never another site (`//evil`, `/\\evil`)."""
    if (
        target
        and target.startswith("/console/")
        and not target.startswith(("//", "/\\"))
        and "\\" not in target
    ):
        return target
    return HOME


def signed_in(request: Request) -> ConsoleSession:
    """The session `ConsoleRoute` found for this request."""
    session: ConsoleSession = request.state.console
    return session


async def find_session(request: Request, runtime: ApiRuntime) -> ConsoleSession | None:
    admin = admin_token(runtime)
    session_id = request.cookies.get(COOKIE, "")
    if admin is None or not session_id:
        return None
    if not await SessionStore(runtime.resources.pool).valid(session_id, PURPOSE, token_id(admin)):
        return None
    return ConsoleSession(session_id, csrf_token(admin, session_id))


def is_fragment(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _refused(request: Request) -> Response:
    if is_fragment(request):
        # htmx follows HX-Redirect whatever the status: a live part whose session ended takes the
        # whole page to the sign-in form.
        response: Response = HTMLResponse("sign in again", 401, {"HX-Redirect": LOGIN})
    else:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"{LOGIN}?next={quote(safe_next(wanted), safe='')}", 303)
    return security_headers(response)


async def _csrf_given(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        # Parsed once: FastAPI's own reading of the form finds it cached on the request.
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _back(request: Request) -> str | None:
    """The console page the failed request came from (the Referer, same origin only), if any."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc:
        return None
    back = safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))
    return back if back != HOME or referer.path == HOME else None


def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """A malformed path is a page that does not exist; a malformed form or query says what is wrong."""
    errors = exc.errors()
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return page(request, "error.html", 404, title="Not found", message="No such page.")
    first = errors[0] if errors else {}
    field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "form"
    message = f"{field}: {first.get('msg', 'invalid')}"
    return page(request, "error.html", 422, title="Not possible", message=message, back=_back(request))


class ConsoleRoute(APIRoute):
    """A console route: refused without a session (before its body is read), every POST checked
    for the session's CSRF token, failures shown as a page, and the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            runtime = runtime_of(request)
            try:
                session = await find_session(request, runtime)
                if session is None:
                    return _refused(request)
                request.state.console = session
                if request.method == "POST" and not hmac.compare_digest(
                    (await _csrf_given(request)).encode(), session.csrf.encode()
                ):
                    return page(
                        request,
                        "error.html",
                        403,
                        title="Refused",
                        message="This form is out of date or did not come from the console: "
                        "reload the page and try again.",
                    )
                response = await handler(request)
            except RequestValidationError as exc:
                return _invalid(request, exc)
            except Exception as exc:
                error = as_happ_error(exc)
                if error is None:
                    raise
                shown = page(
                    request,
                    "error.html",
                    error.status_code,
                    title="Not possible",
                    message=error.message,
                    back=_back(request),
                )
                if error.status_code == 503:
                    # A database or Temporal out of reach: worth reloading soon, as the API says.
                    shown.headers["Retry-After"] = "5" if isinstance(error, DependencyUnavailable) else "60"
                return shown
            return security_headers(response)

        return guarded


def session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=secure_cookie(request),
        httponly=True,
        samesite="lax",
    )


def forget_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=secure_cookie(request), httponly=True, samesite="lax"
    )


@dataclass(frozen=True)
class SignIn:
    """What a sign-in came to: a new session, or why not (401, or 429 with the seconds to wait)."""

    session_id: str | None
    problem: str | None = None
    status: int = 200
    retry_after: int | None = None


async def sign_in(request: Request, runtime: ApiRuntime, given: str) -> SignIn:
    admin = admin_token(runtime)
    if admin is None:
        return SignIn(None, "The console is disabled: HAPP_ADMIN_TOKEN is not set.", 401)
    pool = runtime.resources.pool
    throttle = SignInThrottle(pool)
    # Checked before the token: a blocked guesser learns nothing from further tries.
    if wait := await throttle.wait_seconds(client_address(request)):
        return SignIn(None, f"Too many wrong admin tokens: try again in {wait} s.", 429, wait)
    if not hmac.compare_digest(given.encode(), admin.encode()):
        await throttle.failed(client_address(request))
        return SignIn(None, "That is not the admin token.", 401)
    return SignIn(await SessionStore(pool).create(PURPOSE, token_id(admin), SESSION_TTL))


async def sign_out(runtime: ApiRuntime, session_id: str) -> None:
    await SessionStore(runtime.resources.pool).end(session_id)
