"""http.request: an outside HTTP call with secrets resolved late and redacted from the answer.

The request goes only where the egress policy allows (`happ_integ.ops.egress`: public addresses,
plus what HAPP_HTTP_ALLOW_PRIVATE / HAPP_HTTP_ALLOWED_NETWORKS allow), reads at most
HAPP_HTTP_MAX_RESPONSE_BYTES of the answer (streamed: a larger answer is cut off, not read whole)
and takes at most `timeout_seconds` in all (1 to 120 s), resolving the host name included.

Errors (the same in an inline and a durable run):
- `ValidationFailed`: a timeout out of bounds, a URL that is not http(s) with a host; not retried;
- `Forbidden`: the policy refuses an address the host resolves to; nothing was sent; not retried;
- `UpstreamRejected`: the answer is larger than the cap; not retried;
- `UpstreamError`: a timeout, a refused connection, a host that does not resolve; retried.
A non-2xx answer is returned, not raised: the handler decides (`if not response.ok: ...`).
"""

from __future__ import annotations

import asyncio
import json

import httpx

import happ_integ.ops.models as m
from happ_integ.errors import Forbidden, UpstreamError, UpstreamRejected, ValidationFailed
from happ_integ.ops.egress import EgressPolicy, egress_client
from happ_integ.ops.operation import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import SecretResolver

_MAX_TEXT = 256 * 1024
MIN_TIMEOUT_SECONDS = 1.0
MAX_TIMEOUT_SECONDS = 120.0
_HIDDEN_HEADERS = {"set-cookie", "authorization"}


@operation("http.request", m.HttpRequest, m.HttpResponse)
async def request(res: Resources, arg: m.HttpRequest) -> m.HttpResponse:
    if not MIN_TIMEOUT_SECONDS <= arg.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationFailed(
            f"http.request: timeout_seconds must be from {MIN_TIMEOUT_SECONDS:g} to "
            f"{MAX_TIMEOUT_SECONDS:g} (got {arg.timeout_seconds:g})"
        )
    secrets = SecretResolver(res, arg.integration)
    url = await secrets.resolve(arg.url)
    # Messages name the URL without its query (it may carry a phone number) and without a secret.
    where = f"{arg.method} {secrets.redact(_without_query(url))}"
    cap = res.settings.http_max_response_bytes
    try:
        async with (
            asyncio.timeout(arg.timeout_seconds),
            egress_client(EgressPolicy.from_settings(res.settings)) as client,
            client.stream(
                arg.method,
                url,
                headers=await secrets.resolve(arg.headers),
                params=await secrets.resolve(arg.params),
                json=await secrets.resolve(arg.json_body) if arg.json_body is not None else None,
                content=await secrets.resolve(arg.content) if arg.content is not None else None,
                timeout=arg.timeout_seconds,
            ) as response,
        ):
            raw = await _read_at_most(response, cap, where)
    except (TimeoutError, httpx.TimeoutException):
        raise UpstreamError(f"{where} timed out after {arg.timeout_seconds:g}s", timeout=True) from None
    except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
        raise ValidationFailed(
            f"{where}: not a request http.request can send ({type(exc).__name__})"
        ) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{where} failed: {secrets.redact(str(exc))}") from None
    except Forbidden as exc:
        # The policy's refusal names the host, which a resolved reference may have filled in.
        raise Forbidden(secrets.redact(exc.message), **exc.details) from None
    text = _decode(raw, response.charset_encoding)
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HIDDEN_HEADERS}
    return m.HttpResponse(
        status_code=response.status_code,
        headers=secrets.redact(headers),
        text=secrets.redact(text[:_MAX_TEXT]),
        json_body=secrets.redact(body),
    )


async def _read_at_most(response: httpx.Response, cap: int, where: str) -> bytes:
    """The body, or `UpstreamRejected` as soon as it is known to be larger than `cap` bytes:
    from its Content-Length before reading, else when the bytes read pass the cap."""

    def too_large() -> UpstreamRejected:
        return UpstreamRejected(
            f"{where} answered more than {cap} bytes (HAPP_HTTP_MAX_RESPONSE_BYTES): the answer was not read",
            limit=cap,
        )

    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > cap:
        raise too_large()
    body = bytearray()
    async for chunk in response.aiter_bytes():  # decompressed: the cap is on what we would hold
        body += chunk
        if len(body) > cap:
            raise too_large()
    return bytes(body)


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def _without_query(url: str) -> str:
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return url.split("?", 1)[0]
