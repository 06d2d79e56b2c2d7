"""`http.request` (ctx.http) goes only where the egress policy allows, reads a bounded answer and
takes a bounded time: against a real loopback peer over HTTP.

Refused: the metadata address, loopback (127.0.0.1, localhost, ::ffff:127.0.0.1) and private
networks without a setting; a host name any of whose addresses is refused. Allowed: loopback with
HAPP_HTTP_ALLOW_PRIVATE=1 or HAPP_HTTP_ALLOWED_NETWORKS. An answer over
HAPP_HTTP_MAX_RESPONSE_BYTES fails without being read whole; timeout_seconds is 1 to 120 s, for
the whole request. No test here sends a packet anywhere but 127.0.0.1: the metadata address is
refused before any connection, and host names are resolved by a stand-in resolver.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.context_ops import context_activities
from happ_integ.durable import error_from_failure
from happ_integ.embedded.process import free_port
from happ_integ.errors import Forbidden, UpstreamError, UpstreamRejected, ValidationFailed
from happ_integ.keys import generate_key
from happ_integ.ops import Resources, http
from happ_integ.ops import models as m
from happ_integ.ops.egress import EgressPolicy
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.ops.secrets import issue_tags
from happ_integ.settings import Settings
from tests.e2e.conftest import serve

INTEGRATION = "egress"
TOKEN = "tok-" + generate_key()[:24]
MiB = 1024 * 1024
HUGE = 40 * MiB
CHUNK = 64 * 1024


@dataclass
class Peer:
    """What the loopback peer saw and how much of its huge answers it produced."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)
    produced: int = 0
    finished: bool = False

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def peer_app(peer: Peer) -> Starlette:
    async def hello(request: Request) -> Response:
        peer.seen.append(
            {"host": request.headers.get("host", ""), "auth": request.headers.get("authorization", "")}
        )
        return JSONResponse({"hello": "world"})

    async def chunks() -> AsyncIterator[bytes]:
        peer.produced, peer.finished = 0, False
        while peer.produced < HUGE:
            peer.produced += CHUNK
            yield b"x" * CHUNK
            await asyncio.sleep(0)  # a chance to notice that the client has gone
        peer.finished = True

    async def huge(request: Request) -> Response:
        # Chunked: no Content-Length tells the size in advance; only reading shows it.
        return StreamingResponse(chunks(), media_type="application/json")

    async def huge_declared(request: Request) -> Response:
        return StreamingResponse(chunks(), headers={"content-length": str(HUGE)})

    async def drip(request: Request) -> Response:
        async def slowly() -> AsyncIterator[bytes]:
            for _ in range(20):  # a byte every 0.3 s: no read ever waits a whole second
                await asyncio.sleep(0.3)
                yield b" "

        return StreamingResponse(slowly())

    async def to_metadata(request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/huge", huge),
            Route("/huge-declared", huge_declared),
            Route("/drip", drip),
            Route("/to-metadata", to_metadata),
        ]
    )


@dataclass
class Env:
    res: Resources
    peer: Peer

    def with_settings(self, **settings: Any) -> Resources:
        base = {"DATABASE_URL": "unused", "HAPP_SECRET_KEY": self.res.settings.require_secret_key()}
        return dataclasses.replace(self.res, settings=Settings(**(base | settings)))

    async def request(self, url: str, res: Resources | None = None, **kw: Any) -> m.HttpResponse:
        """GET `url` with our token as a reference in Authorization, as a handler would."""
        res = res or self.res
        tag = issue_tags(res, INTEGRATION, ["TOKEN"])["TOKEN"]
        arg = m.HttpRequest(
            integration=INTEGRATION,
            url=url,
            headers={"Authorization": "Bearer {{secret:TOKEN:" + tag + "}}"},
            **kw,
        )
        result: m.HttpResponse = await http.request.impl(res, arg)
        return result


@pytest.fixture(scope="module")
async def env(pg_url: str) -> AsyncIterator[Env]:
    peer = Peer(free_port())
    server, task = await serve(peer_app(peer), peer.port)
    res = await open_resources(Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=generate_key()), {})
    await res.creds(INTEGRATION).set_many({"TOKEN": TOKEN})
    yield Env(res, peer)
    await close_resources(res)
    server.should_exit = True
    await task


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], list[str]]:
    """Host names resolve to the addresses given (and only those names resolve); returns the list
    of names asked, one entry per resolution."""
    asked: list[str] = []

    def install(table: dict[str, list[str]]) -> list[str]:
        real = socket.getaddrinfo

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in table:
                return real(host, port, *args, **kwargs)
            asked.append(host)
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (
                    family[ipaddress.ip_address(a).version],
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (a, port),
                )
                for a in table[host]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return asked

    return install


async def test_the_metadata_address_is_refused_before_anything_is_sent(env: Env) -> None:
    started = time.monotonic()
    for res in (env.res, env.with_settings(HAPP_HTTP_ALLOW_PRIVATE="1")):  # private ≠ link-local
        with pytest.raises(Forbidden) as refused:
            await env.request("http://169.254.169.254/latest/meta-data/iam/security-credentials/", res)
        message = refused.value.message
        assert (
            "169.254.169.254 is a link-local address" in message and "HAPP_HTTP_ALLOWED_NETWORKS" in message
        )
        assert TOKEN not in message and not refused.value.retryable
    assert time.monotonic() - started < 1  # refused at once: no connection was tried


async def test_loopback_is_refused_without_a_setting(
    env: Env, resolver: Callable[[dict[str, list[str]]], list[str]]
) -> None:
    resolver({"localhost": ["127.0.0.1", "::1"]})
    before = len(env.peer.seen)
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        with pytest.raises(Forbidden, match="is a loopback address"):
            await env.request(env.peer.url("/hello?phone=+380994829573", host))
    with pytest.raises(Forbidden) as refused:
        await env.request(env.peer.url("/hello?phone=+380994829573"))
    assert "380994829573" not in refused.value.message  # the query never reaches a message
    assert len(env.peer.seen) == before  # nothing reached the peer


@pytest.mark.parametrize(
    "settings",
    [{"HAPP_HTTP_ALLOW_PRIVATE": "1"}, {"HAPP_HTTP_ALLOWED_NETWORKS": "10.0.0.0/8,127.0.0.1"}],
    ids=["allow-private", "allowed-networks"],
)
async def test_loopback_is_allowed_with_a_setting(env: Env, settings: dict[str, str]) -> None:
    answer = await env.request(env.peer.url("/hello"), env.with_settings(**settings))
    assert answer.status_code == 200 and answer.json() == {"hello": "world"}
    assert env.peer.seen[-1]["auth"] == f"Bearer {TOKEN}"  # our own reference, resolved


async def test_a_host_with_any_refused_address_is_refused(
    env: Env, resolver: Callable[[dict[str, list[str]]], list[str]]
) -> None:
    """Every address a name resolves to is checked: a public one beside a private one is no pass."""
    resolver({"mixed.test": ["93.184.215.14", "127.0.0.1"], "private.test": ["10.1.2.3"]})
    with pytest.raises(Forbidden, match=r"mixed\.test \(it resolves to 127\.0\.0\.1\)"):
        await env.request(env.peer.url("/hello", "mixed.test"))
    with pytest.raises(Forbidden, match="is a private-network address"):
        await env.request(env.peer.url("/hello", "private.test"))


async def test_the_address_checked_is_the_address_dialled(
    env: Env, resolver: Callable[[dict[str, list[str]]], list[str]]
) -> None:
    """The name is resolved once, when connecting, and that address is dialled (with the name as
    Host), so an answer that changes after the check (DNS rebinding) is never used."""
    asked = resolver({"peer.test": ["127.0.0.1"]})
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1")
    answer = await env.request(env.peer.url("/hello", "peer.test"), res)
    assert answer.status_code == 200 and env.peer.seen[-1]["host"] == f"peer.test:{env.peer.port}"
    assert asked == ["peer.test"]


async def test_a_redirect_is_answered_not_followed(env: Env) -> None:
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1")
    answer = await env.request(env.peer.url("/to-metadata"), res)
    assert answer.status_code == 302 and answer.headers["location"].startswith("http://169.254.169.254/")


@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
async def test_an_oversized_answer_fails_without_being_read_whole(env: Env, path: str) -> None:
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1", HAPP_HTTP_MAX_RESPONSE_BYTES=str(MiB))
    started = time.monotonic()
    with pytest.raises(UpstreamRejected) as refused:
        await env.request(env.peer.url(path), res)
    assert f"answered more than {MiB} bytes (HAPP_HTTP_MAX_RESPONSE_BYTES)" in refused.value.message
    assert not refused.value.retryable and time.monotonic() - started < 5
    await asyncio.sleep(0.3)  # the peer notices the closed connection and stops producing
    assert not env.peer.finished and env.peer.produced < HUGE // 4


async def test_an_answer_within_the_cap_is_read(env: Env) -> None:
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1", HAPP_HTTP_MAX_RESPONSE_BYTES=str(1024))
    assert (await env.request(env.peer.url("/hello"), res)).json() == {"hello": "world"}


@pytest.mark.parametrize("seconds", [0, 0.5, 120.5, 3600])
async def test_timeout_seconds_out_of_bounds_is_refused(env: Env, seconds: float) -> None:
    before = len(env.peer.seen)
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1")
    with pytest.raises(ValidationFailed, match="timeout_seconds must be from 1 to 120"):
        await env.request(env.peer.url("/hello"), res, timeout_seconds=seconds)
    assert len(env.peer.seen) == before


async def test_timeout_seconds_bounds_the_whole_request(env: Env) -> None:
    """A peer that sends a byte every 0.3 s never lets one read wait a second; the request still
    ends after its one second."""
    res = env.with_settings(HAPP_HTTP_ALLOWED_NETWORKS="127.0.0.1")
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="timed out after 1s"):
        await env.request(env.peer.url("/drip"), res, timeout_seconds=1)
    assert time.monotonic() - started < 2.5
    assert (await env.request(env.peer.url("/hello"), res, timeout_seconds=120)).status_code == 200


async def test_a_durable_run_gets_the_refusal_once_not_retried(env: Env) -> None:
    """As an activity the refusal is a non-retryable failure that turns back into `Forbidden` in
    the workflow, so the handler sees what an inline run sees and Temporal does not try again."""
    [activity] = [a for a in context_activities(env.res) if a.__name__ == "http_request"]

    async def run() -> Any:
        tag = issue_tags(env.res, INTEGRATION, ["TOKEN"])["TOKEN"]
        arg = m.HttpRequest(
            integration=INTEGRATION,
            url="http://169.254.169.254/latest/meta-data/",
            headers={"Authorization": "Bearer {{secret:TOKEN:" + tag + "}}"},
        )
        return await activity(arg)

    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(run)
    assert failed.value.non_retryable and failed.value.type == "Forbidden"
    assert isinstance(error_from_failure(failed.value), Forbidden)


@pytest.mark.parametrize(
    ("address", "refused_by_default", "refused_with_private"),
    [
        ("93.184.215.14", False, False),
        ("2606:4700:4700::1111", False, False),
        ("127.0.0.1", True, False),
        ("127.8.9.10", True, False),
        ("::1", True, False),
        ("10.1.2.3", True, False),
        ("172.16.0.1", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),
        ("fd00::1", True, False),
        ("169.254.169.254", True, True),
        ("fe80::1", True, True),
        ("0.0.0.0", True, True),
        ("224.0.0.251", True, True),
        ("::ffff:169.254.169.254", True, True),
        ("::ffff:127.0.0.1", True, False),
        ("64:ff9b::a9fe:a9fe", True, True),  # NAT64 for 169.254.169.254
    ],
)
def test_which_addresses_the_policy_refuses(
    address: str, refused_by_default: bool, refused_with_private: bool
) -> None:
    assert (EgressPolicy().refusal(address) is not None) is refused_by_default
    assert (EgressPolicy(allow_private=True).refusal(address) is not None) is refused_with_private
    listed = EgressPolicy(allowed_networks=(ipaddress.ip_network(address),))
    assert listed.refusal(address) is None  # a listed network is allowed, link-local included
