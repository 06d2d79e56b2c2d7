"""The one place where an outside API's answer becomes a happ-integ error.

    api = JsonApi(http, "https://openapi.keycrm.app/v1", service="KeyCRM",
                  headers={"Authorization": f"Bearer {key}"}, secrets=[key])
    buyers = await api.request("GET", "/buyer", params={"filter[buyer_phone]": "380991112233"})

Mapping (every client uses it, so a workflow sees the same errors from every peer):

- timeout, connection refused/reset, any transport failure, 5xx, 429 → `UpstreamError` (retryable)
- a base URL whose scheme httpx cannot speak → `UpstreamRejected`
- 401 → `Unauthorized`, 403 → `Forbidden`, 404 → `NotFound`
- any other 4xx → `UpstreamRejected` (retrying cannot help)
- a 2xx whose body is not JSON → `UpstreamError`

Messages name the service, the method and the path (never the query string, which may carry a
phone number), plus a short excerpt of the peer's own error text with every configured secret
and every phone-like digit run masked. Secrets are never part of a message or of `details`.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from happ_integ.errors import (
    Forbidden,
    HappError,
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamRejected,
)
from happ_integ.logs.redact import Redactor, mask_phones

Timeout = float | httpx.Timeout
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_EXCERPT = 300
_ERROR_KEYS = ("message", "error", "errorMessage", "detail", "description", "errors")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secrets and phone-like digit runs: `redact("key abc +380991112233", ["abc1"])`."""
    masker = Redactor(mask_credentials=False)
    for secret in secrets:
        masker.add_secret(secret)
    return mask_phones(masker.scrub(text))


def _excerpt(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:_EXCERPT]
    if isinstance(body, dict):
        parts = [_text(body[key]) for key in _ERROR_KEYS if body.get(key)]
        if parts:
            return " ".join(parts)[:_EXCERPT]
    return jsonlib.dumps(body, ensure_ascii=False)[:_EXCERPT]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else jsonlib.dumps(value, ensure_ascii=False)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_for_response(
    response: httpx.Response, *, service: str, secrets: Iterable[str] = ()
) -> HappError | None:
    """The error a non-2xx answer stands for, or None: `raise err` if `err := error_for_response(r, service="X")`."""
    status = response.status_code
    if status < 400:
        return None
    method, path = response.request.method, response.request.url.path
    text = redact(_excerpt(response), secrets)
    message = f"{service} answered HTTP {status} to {method} {path}" + (f": {text}" if text else "")
    details: dict[str, Any] = {"service": service, "status": status, "method": method, "path": path}
    if status == 429 or status >= 500:
        details["retry_after"] = _retry_after(response)
        return UpstreamError(message, **details)
    if status == 401:
        return Unauthorized(message, **details)
    if status == 403:
        return Forbidden(message, **details)
    if status == 404:
        return NotFound(message, **details)
    return UpstreamRejected(message, **details)


def error_for_transport(exc: httpx.RequestError, *, service: str, method: str, path: str) -> HappError:
    """A timeout or connection failure as a retryable `UpstreamError` (the message has no URL query);
    a URL scheme httpx cannot speak is a configuration mistake, so `UpstreamRejected`."""
    details: dict[str, Any] = {"service": service, "method": method, "path": path}
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UpstreamRejected(f"{service} base URL has an unsupported scheme ({method} {path})", **details)
    timed_out = isinstance(exc, httpx.TimeoutException)
    kind = "timed out" if timed_out else f"was unreachable ({type(exc).__name__})"
    return UpstreamError(f"{service} {kind} on {method} {path}", timeout=timed_out, **details)


class JsonApi:
    """A JSON API at `base_url` reached through an injected `httpx.AsyncClient`.

        api = JsonApi(http, base, service="NetHunt", headers={"Authorization": basic}, secrets=[key])
        folders = await api.request("GET", "/triggers/readable-folder")

    `timeout` (seconds or an `httpx.Timeout`) applies to every request made through this object.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        service: str,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.secrets = tuple(s for s in secrets if s)
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None when empty) or raise a mapped error."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = {k: _param(v) for k, v in (params or {}).items()}
        try:
            response = await self.http.request(
                method, url, params=query or None, json=json, headers=self.headers, timeout=self.timeout
            )
        except httpx.RequestError as exc:
            raise error_for_transport(
                exc, service=self.service, method=method, path=httpx.URL(url).path
            ) from None
        error = error_for_response(response, service=self.service, secrets=self.secrets)
        if error is not None:
            raise error
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                f"{self.service} answered {method} {response.request.url.path} with a body that is not JSON",
                service=self.service,
                status=response.status_code,
            ) from None


def _param(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
