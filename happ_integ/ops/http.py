"""http.request: an outside HTTP call with secrets resolved late and redacted from the answer."""

from __future__ import annotations

import json

import httpx

from happ_integ.errors import UpstreamError
from happ_integ.ops import models as m
from happ_integ.ops import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import SecretResolver

_MAX_TEXT = 256 * 1024


@operation("http.request", m.HttpRequest, m.HttpResponse)
async def http_request(res: Resources, arg: m.HttpRequest) -> m.HttpResponse:
    secrets = SecretResolver(res, arg.integration)
    url = await secrets.resolve(arg.url)
    try:
        response = await res.http.request(
            arg.method,
            url,
            headers=await secrets.resolve(arg.headers),
            params=await secrets.resolve(arg.params),
            json=await secrets.resolve(arg.json_body) if arg.json_body is not None else None,
            content=await secrets.resolve(arg.content) if arg.content is not None else None,
            timeout=arg.timeout_seconds,
        )
    except httpx.TimeoutException:
        raise UpstreamError(
            f"{arg.method} {secrets.redact(url)} timed out after {arg.timeout_seconds}s"
        ) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"{arg.method} {secrets.redact(url)} failed: {secrets.redact(str(exc))}"
        ) from None
    # A non-2xx answer is returned, not raised: the handler decides (`if not response.ok: ...`).
    text = response.text[:_MAX_TEXT]
    try:
        body = response.json() if text else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    headers = {k: v for k, v in response.headers.items() if k.lower() not in {"set-cookie", "authorization"}}
    return m.HttpResponse(
        status_code=response.status_code,
        headers=secrets.redact(headers),
        text=secrets.redact(text),
        json_body=secrets.redact(body),
    )
