"""The shared status → error mapping, on a mock transport (no peer needed)."""

from __future__ import annotations

import httpx
import pytest

from happ_integ.clients._http import JsonApi, redact
from happ_integ.errors import (
    Forbidden,
    HappError,
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamRejected,
)

SECRET = "sk-very-secret-123"


def api_answering(
    status: int, body: bytes = b'{"message": "nope"}', headers: dict[str, str] | None = None
) -> JsonApi:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {"content-type": "application/json"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return JsonApi(http, "http://peer.test/api", service="Peer", headers={"X-Key": SECRET}, secrets=[SECRET])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, UpstreamRejected),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, UpstreamRejected),
        (422, UpstreamRejected),
        (429, UpstreamError),
        (500, UpstreamError),
        (502, UpstreamError),
        (503, UpstreamError),
    ],
)
async def test_status_maps_to_error(status: int, error: type[HappError]) -> None:
    with pytest.raises(error) as caught:
        await api_answering(status).request("GET", "/things/1", params={"phone": "+380994829573"})
    assert type(caught.value) is error
    assert caught.value.details["status"] == status
    assert caught.value.details["path"] == "/api/things/1"
    assert "Peer answered HTTP" in caught.value.message and "nope" in caught.value.message
    assert "380994829573" not in caught.value.message  # the query string never reaches a message


async def test_429_keeps_retry_after() -> None:
    with pytest.raises(UpstreamError) as caught:
        await api_answering(429, headers={"retry-after": "7"}).request("GET", "/x")
    assert caught.value.details["retry_after"] == 7.0
    assert caught.value.retryable


async def test_secrets_and_phones_are_masked_in_messages() -> None:
    body = f'{{"error": "bad key {SECRET} for +380 99 482 95 73"}}'.encode()
    with pytest.raises(UpstreamRejected) as caught:
        await api_answering(400, body).request("POST", "/x", json={"a": 1})
    assert SECRET not in caught.value.message and SECRET not in repr(caught.value.details)
    assert "***" in caught.value.message and "<phone>" in caught.value.message
    assert redact(f"{SECRET}!", [SECRET]) == "***!"


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")]
)
async def test_transport_failures_are_retryable(exc: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    api = JsonApi(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)), "http://peer.test", service="Peer"
    )
    with pytest.raises(UpstreamError) as caught:
        await api.request("GET", "/x", params={"q": "secret-query"})
    assert caught.value.details["timeout"] is isinstance(exc, httpx.TimeoutException)
    assert "secret-query" not in caught.value.message
    assert caught.value.__cause__ is None


async def test_body_decoding_and_timeout_passthrough() -> None:
    seen: list[httpx.Request] = []
    bodies = iter([b'{"ok": true}', b"", b"<html>oops</html>"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=next(bodies))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    api = JsonApi(http, "http://peer.test/base/", service="Peer", timeout=3.5)
    assert await api.request("GET", "/a", params={"flag": True, "n": 2}) == {"ok": True}
    assert await api.request("GET", "b") is None
    with pytest.raises(UpstreamError, match="not JSON"):
        await api.request("GET", "/c")
    assert str(seen[0].url) == "http://peer.test/base/a?flag=true&n=2"
    assert seen[0].extensions["timeout"] == {"connect": 3.5, "read": 3.5, "write": 3.5, "pool": 3.5}
    assert seen[0].headers["accept"] == "application/json"


async def test_unsupported_scheme_is_not_retried() -> None:
    async with httpx.AsyncClient() as http:
        api = JsonApi(http, "htp://peer.test", service="Peer")
        with pytest.raises(UpstreamRejected, match="unsupported scheme"):
            await api.request("GET", "/x")
