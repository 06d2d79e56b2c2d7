"""The remote codec the Temporal Web UI calls to show encrypted payloads to a signed-in operator.

    POST /codec/decode   {"payloads": [{"metadata": {...}, "data": "<base64>"}]}   (Temporal's JSON shape)
    POST /codec/encode
    GET|POST /codec/login   sign in with the admin token: sets an HttpOnly cookie the UI sends along

The UI cannot add an Authorization header of its own, so besides `Bearer $HAPP_ADMIN_TOKEN` the
endpoint accepts the cookie `/codec/login` sets. Point the UI at it with "Codec Server" →
`http://<api>/codec` and "Include cross-origin credentials".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.body import GuardedRoute, parse_json
from api.deps import RuntimeDep, is_admin
from happ_integ.codec import EncryptionCodec
from happ_integ.errors import NotFound, Unauthorized, ValidationFailed

COOKIE = "happ_codec"
_FORM = """<!doctype html><title>happ-integ codec</title>
<form method="post"><p>Admin token, to decode payloads in the Temporal Web UI:</p>
<input type="password" name="token" autofocus> <button>Sign in</button></form>"""

router = APIRouter(prefix="/codec", tags=["Codec"], route_class=GuardedRoute)


def _cookie_value(admin_token: str) -> str:
    # Derived, not the token itself: the cookie opens the codec and nothing else.
    return hmac.new(admin_token.encode(), b"happ-codec-session", hashlib.sha256).hexdigest()


def _authorise(request: Request, runtime: RuntimeDep) -> EncryptionCodec:
    settings = runtime.settings
    if settings.payload_key is None:
        raise NotFound("payload encryption is off (HAPP_PAYLOAD_KEY is not set): there is nothing to decode")
    if settings.admin_token is None:
        raise Unauthorized("the codec is disabled: HAPP_ADMIN_TOKEN is not set")
    cookie = request.cookies.get(COOKIE, "")
    if not (
        is_admin(request, runtime)
        or hmac.compare_digest(cookie, _cookie_value(settings.admin_token.get_secret_value()))
    ):
        raise Unauthorized("sign in at /codec/login, or send Authorization: Bearer <HAPP_ADMIN_TOKEN>")
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
    codec = _authorise(request, runtime)
    try:
        return _answer(await codec.decode((await _payloads(request)).payloads))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None


@router.post("/encode")
async def encode(request: Request, runtime: RuntimeDep) -> Response:
    """Encrypt payloads (the UI uses it for signals and queries it sends)."""
    codec = _authorise(request, runtime)
    return _answer(await codec.encode((await _payloads(request)).payloads))


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    """A form asking for the admin token."""
    return HTMLResponse(_FORM)


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Check the admin token (form field or JSON `token`) and set the codec cookie."""
    expected = runtime.settings.admin_token
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = parse_json(raw or b"{}")
        except ValueError as exc:
            raise ValidationFailed(f"the body is not JSON: {exc}") from None
        token = str(body.get("token", "")) if isinstance(body, dict) else ""
    else:
        token = parse_qs(raw.decode(errors="replace")).get("token", [""])[0]
    if expected is None or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("wrong admin token")
    response = JSONResponse({"success": True, "message": "signed in: the Web UI can now decode payloads"})
    response.set_cookie(
        COOKIE, _cookie_value(expected.get_secret_value()), httponly=True, samesite="lax", max_age=12 * 3600
    )
    return response
