"""The remote codec the Temporal Web UI calls to show encrypted payloads to a signed-in operator.

    POST /codec/decode   {"payloads": [{"metadata": {...}, "data": "<base64>"}]}   (Temporal's JSON shape)
    POST /codec/encode
    GET|POST /codec/login    sign in with the admin token: a session cookie the UI sends along
    POST /codec/logout       the session ends, for every API replica

The UI cannot add an Authorization header of its own, so besides `Bearer $HAPP_ADMIN_TOKEN` the
endpoint accepts the session cookie `/codec/login` sets. Point the UI at it with "Codec Server" →
`http://<api>/codec` and "Include cross-origin credentials" (`TEMPORAL_CODEC_INCLUDE_CREDENTIALS`):
without it the browser sends no cookie to another origin.

The cookie: a random session id (its digest in PostgreSQL, so any replica accepts it), 12 hours,
`HttpOnly` (no script reads it), `Path=/codec` (sent nowhere else), `SameSite=Strict` and `Secure`.
Strict is enough for the UI: its requests to the codec are cross-origin but same-site (the UI at
127.0.0.1:8233 and the API at 127.0.0.1:3001, or ui.example.com and api.example.com), and SameSite
only withholds cookies from requests of another site. `Secure` is left off only for plain http to
a loopback name (`happ dev`, a local compose), which browsers treat as a secure context anyway.
Wrong admin tokens are throttled per client address and overall (429 with Retry-After).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.body import GuardedRoute, parse_json
from api.deps import RuntimeDep, bearer_token
from api.errors import error_body
from api.runtime import ApiRuntime
from happ_integ.codec import EncryptionCodec
from happ_integ.errors import NotFound, Unauthorized, ValidationFailed
from happ_integ.stores.sessions import SESSION_TTL, SessionStore, SignInThrottle, token_id

COOKIE = "happ_codec_session"
COOKIE_PATH = "/codec"
PURPOSE = "codec"
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_FORM = """<!doctype html><title>happ-integ codec</title>
<form method="post"><p>Admin token, to decode payloads in the Temporal Web UI:</p>
<input type="password" name="token" autocomplete="current-password" autofocus> <button>Sign in</button></form>
<form method="post" action="logout"><button>Sign out</button></form>"""

router = APIRouter(prefix="/codec", tags=["Codec"], route_class=GuardedRoute)


def secure_cookie(request: Request) -> bool:
    """Secure, except over plain http to a loopback name (dev): a browser would drop it there."""
    host = (request.url.hostname or "").lower()
    return request.url.scheme == "https" or not (host in _LOOPBACK or host.endswith(".localhost"))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttled(seconds: int) -> JSONResponse:
    return JSONResponse(
        error_body(f"too many wrong admin tokens: try again in {seconds} s"),
        429,
        {"Retry-After": str(seconds)},
    )


def _admin_token(runtime: ApiRuntime) -> str:
    if runtime.settings.admin_token is None:
        raise Unauthorized("the codec is disabled: HAPP_ADMIN_TOKEN is not set")
    return runtime.settings.admin_token.get_secret_value()


def _matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


async def _authorise(request: Request, runtime: ApiRuntime) -> EncryptionCodec | Response:
    """The codec for a signed-in session or the admin bearer; a throttled guesser gets a 429."""
    settings = runtime.settings
    if settings.payload_key is None:
        raise NotFound("payload encryption is off (HAPP_PAYLOAD_KEY is not set): there is nothing to decode")
    expected = _admin_token(runtime)
    pool = runtime.resources.pool
    bearer = bearer_token(request)
    if bearer is not None:
        # An admin token sent along is a sign-in like /codec/login's, throttled the same way.
        throttle = SignInThrottle(pool)
        if wait := await throttle.wait_seconds(_client(request)):
            return _throttled(wait)
        if not _matches(bearer, expected):
            await throttle.failed(_client(request))
            raise Unauthorized("wrong admin token")
    elif not await SessionStore(pool).valid(request.cookies.get(COOKIE, ""), PURPOSE, token_id(expected)):
        raise Unauthorized(
            "sign in at /codec/login (the session may have expired or ended), "
            "or send Authorization: Bearer <HAPP_ADMIN_TOKEN>"
        )
    return EncryptionCodec(settings.payload_key.get_secret_value())


async def _payloads(request: Request) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as exc:
        raise ValidationFailed(f"body is not a Temporal Payloads JSON object: {exc}") from None


def _answer(payloads: Sequence[Payload]) -> Response:
    return Response(json_format.MessageToJson(Payloads(payloads=payloads)), media_type="application/json")


@router.post("/decode")
async def decode(request: Request, runtime: RuntimeDep) -> Response:
    """Decrypt payloads for the Web UI."""
    codec = await _authorise(request, runtime)
    if isinstance(codec, Response):
        return codec
    try:
        return _answer(await codec.decode((await _payloads(request)).payloads))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


@router.post("/encode")
async def encode(request: Request, runtime: RuntimeDep) -> Response:
    """Encrypt payloads (the UI uses it for signals and queries it sends)."""
    codec = await _authorise(request, runtime)
    if isinstance(codec, Response):
        return codec
    return _answer(await codec.encode((await _payloads(request)).payloads))


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    """A form asking for the admin token."""
    return HTMLResponse(_FORM)


async def _given_token(request: Request) -> str:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = parse_json(raw or b"{}")
        except ValueError as exc:
            raise ValidationFailed(f"the body is not JSON: {exc}") from None
        return str(body.get("token", "")) if isinstance(body, dict) else ""
    return parse_qs(raw.decode(errors="replace")).get("token", [""])[0]


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the admin token (form field or JSON `token`) and open a session (a cookie)."""
    expected = _admin_token(runtime)
    pool = runtime.resources.pool
    throttle = SignInThrottle(pool)
    # Checked before the token: a blocked guesser learns nothing from further tries.
    if wait := await throttle.wait_seconds(_client(request)):
        return _throttled(wait)
    if not _matches(await _given_token(request), expected):
        await throttle.failed(_client(request))
        raise Unauthorized("wrong admin token")
    secure = secure_cookie(request)
    message = "signed in: the Web UI can now decode payloads"
    if secure and request.url.scheme != "https":
        message += " (this page came over plain http: browsers keep the Secure cookie only over https)"
    response = JSONResponse({"success": True, "message": message})
    session = await SessionStore(pool).create(PURPOSE, token_id(expected), SESSION_TTL)
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    """End the session: its cookie no longer opens the codec, on any replica."""
    ended = await SessionStore(runtime.resources.pool).end(request.cookies.get(COOKIE, ""))
    response = JSONResponse({"success": True, "message": "signed out" if ended else "no session to end"})
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=secure_cookie(request), httponly=True, samesite="strict"
    )
    return response
