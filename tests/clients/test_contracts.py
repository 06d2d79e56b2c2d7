"""One contract for every client, each against its simulator peer over ASGI: a wrong key is
`Unauthorized`, an unknown resource `NotFound` (where the API has one), a 429 an `UpstreamError`
that keeps `Retry-After`, a 5xx an `UpstreamError` the next request recovers from, a timeout an
`UpstreamError`; and in none of them does the key reach the error's text, its details or a log."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from happ_integ.clients._http import Timeout
from happ_integ.clients.elevenlabs import ElevenLabsApi
from happ_integ.clients.happ_voice import HappVoiceApi
from happ_integ.clients.keycrm import KeyCrmApi
from happ_integ.clients.llm import LlmApi
from happ_integ.clients.nethunt import NetHuntApi
from happ_integ.errors import HappError, NotFound, Unauthorized, UpstreamError
from simulator import SimState
from simulator.elevenlabs import create_elevenlabs_app
from simulator.elevenlabs_state import ElevenLabsState
from simulator.keycrm import KeyCrmState, create_keycrm_app
from simulator.llm import LlmState, create_llm_app
from simulator.nethunt import NetHuntState, create_nethunt_app
from simulator.voice import VoiceState, create_voice_app

EMAIL = "me@example.com"
PHONE = "+380994829573"
SCHEMA = {"type": "object", "properties": {"outcome": {"type": "string"}}}


class TimeoutASGITransport(httpx.ASGITransport):
    """`ASGITransport` ignores timeouts; this one gives up after the request's read timeout, as a
    socket would, so a slow peer (`state.delay_next`) makes the client's own timeout fire."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        read = (request.extensions.get("timeout") or {}).get("read")
        try:
            async with asyncio.timeout(read):
                return await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout("simulated read timeout", request=request) from None


@dataclass
class Peer:
    """A client and its simulator: `make(http, key, timeout)` builds the client, `call` is a request
    that succeeds with the right key, `missing` one for a resource that does not exist."""

    state: SimState
    app: FastAPI
    key: str
    base: str
    make: Callable[[httpx.AsyncClient, str, str, Timeout], Any]
    call: Callable[[Any], Awaitable[Any]]
    missing: Callable[[Any, httpx.AsyncClient], Awaitable[Any]] | None = None
    on_wire: Callable[[str], list[str]] = field(default=lambda key: [key])

    def client(self, http: httpx.AsyncClient, key: str | None = None, timeout: Timeout = 5.0) -> Any:
        return self.make(http, self.base, key or self.key, timeout)

    def secrets(self, *keys: str) -> list[str]:
        return [s for key in (self.key, *keys) for s in self.on_wire(key)]


def nethunt() -> Peer:
    state = NetHuntState(email=EMAIL, api_key="nh-key-contract-0123456789")
    state.add_folder("Leads", folder_id="leads")
    return Peer(
        state,
        create_nethunt_app(state),
        state.api_key,
        "http://nethunt.test/api/v1/zapier",
        lambda http, base, key, timeout: NetHuntApi(http, base, EMAIL, key, timeout=timeout),
        lambda api: api.search_records("leads", f'"Phone":{PHONE}'),
        lambda api, _: api.search_records("no-such-folder", "x"),
        # What travels is the Basic token: base64 of "email:key" must not leak either.
        on_wire=lambda key: [key, base64.b64encode(f"{EMAIL}:{key}".encode()).decode()],
    )


def keycrm() -> Peer:
    state = KeyCrmState(api_key="kc-key-contract-0123456789")
    state.add_buyer("Іван Петренко", PHONE)
    return Peer(
        state,
        create_keycrm_app(state),
        state.api_key,
        "http://keycrm.test/v1",
        lambda http, base, key, timeout: KeyCrmApi(http, base, key, timeout=timeout),
        lambda api: api.find_buyer_by_phone(PHONE),
        lambda api, _: api.update_order(999_999, {"status_id": 1}),
    )


def happ_voice() -> Peer:
    state = VoiceState(token="va-token-contract-0123456789")
    # The SaaS accepts any SIP id on originate: it has no "unknown resource" to ask for.
    return Peer(
        state,
        create_voice_app(state),
        state.token,
        "http://voice.test",
        lambda http, base, key, timeout: HappVoiceApi(http, base, key, timeout=timeout),
        lambda api: api.originate("sip-1", PHONE, 1, call_id="c-1"),
    )


def elevenlabs_conversation() -> Peer:
    state = ElevenLabsState(api_key="xi-key-contract-0123456789")
    state.store({"conversation_id": "conv_1", "status": "done"})
    return Peer(
        state,
        create_elevenlabs_app(state),
        state.api_key,
        "http://elevenlabs.test",
        lambda http, base, key, timeout: ElevenLabsApi(http, base, key, timeout=timeout),
        lambda api: api.get_conversation("conv_1"),
        lambda api, _: api.get_conversation("conv_missing"),
    )


def elevenlabs_outbound(via: str) -> Callable[[], Peer]:
    def build() -> Peer:
        state = ElevenLabsState(api_key="xi-key-contract-0123456789", known_agents={"agent_sim"})

        def start(agent_id: str) -> Callable[..., Awaitable[Any]]:
            return lambda api, *_: api.outbound_call(
                via,
                agent_id=agent_id,
                agent_phone_number_id="phnum_sim",
                to_number=PHONE,
                dynamic_variables={"call_id": "c-1"},
            )

        return Peer(
            state,
            create_elevenlabs_app(state),
            state.api_key,
            "http://elevenlabs.test",
            lambda http, base, key, timeout: ElevenLabsApi(http, base, key, timeout=timeout),
            start("agent_sim"),
            start("agent_nobody"),
        )

    return build


def llm() -> Peer:
    state = LlmState(api_key="sk-llm-contract-0123456789")
    messages = [{"role": "user", "content": "user: Так, цікаво"}]

    def ask(api: LlmApi, *_: Any) -> Awaitable[Any]:
        return api.chat_json(messages, schema_name="call_analysis", schema=SCHEMA)

    return Peer(
        state,
        create_llm_app(state),
        state.api_key,
        "http://llm.test/v1",
        lambda http, base, key, timeout: LlmApi(http, base, key, state.model, timeout=timeout),
        ask,
        # An unknown model is OpenAI's 404.
        lambda _, http: ask(LlmApi(http, "http://llm.test/v1", state.api_key, "gpt-nonexistent")),
    )


PEERS: dict[str, Callable[[], Peer]] = {
    "nethunt": nethunt,
    "keycrm": keycrm,
    "happ_voice": happ_voice,
    "elevenlabs_conversation": elevenlabs_conversation,
    "elevenlabs_outbound_sip": elevenlabs_outbound("sip"),
    "elevenlabs_outbound_twilio": elevenlabs_outbound("twilio"),
    "llm": llm,
}


@pytest.fixture(params=list(PEERS))
async def peer(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Peer, httpx.AsyncClient]]:
    built = PEERS[request.param]()
    async with httpx.AsyncClient(transport=TimeoutASGITransport(app=built.app)) as http:
        yield built, http


def assert_nothing_leaks(exc: HappError, caplog: pytest.LogCaptureFixture, secrets: list[str]) -> None:
    texts = [str(exc), repr(exc), exc.message, repr(exc.details)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(vars(record)) for record in caplog.records]
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        assert not [text for text in texts if secret in text], f"a secret leaked: {secret[:4]}…"


async def test_the_right_key_works(peer: tuple[Peer, httpx.AsyncClient]) -> None:
    built, http = peer
    await built.call(built.client(http))
    assert len(built.state.requests) == 1


async def test_wrong_key_is_unauthorized(
    peer: tuple[Peer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    built, http = peer
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-" + built.key[::-1]
    with pytest.raises(Unauthorized) as caught:
        await built.call(built.client(http, wrong))
    assert caught.value.details["status"] == 401 and not caught.value.retryable
    assert_nothing_leaks(caught.value, caplog, built.secrets(wrong))


async def test_unknown_resource_is_not_found(
    peer: tuple[Peer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    built, http = peer
    if built.missing is None:
        pytest.skip("this API has no unknown resource to ask for")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotFound) as caught:
        await built.missing(built.client(http), http)
    assert caught.value.details["status"] == 404
    assert_nothing_leaks(caught.value, caplog, built.secrets())


async def test_rate_limit_keeps_retry_after(
    peer: tuple[Peer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    built, http = peer
    caplog.set_level(logging.DEBUG)
    built.state.fail_next(429, body={"message": "slow down"}, headers={"Retry-After": "7"})
    with pytest.raises(UpstreamError) as caught:
        await built.call(built.client(http))
    assert caught.value.retryable and caught.value.details["status"] == 429
    assert caught.value.details["retry_after"] == 7
    assert_nothing_leaks(caught.value, caplog, built.secrets())


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_is_retryable_and_the_next_request_succeeds(
    peer: tuple[Peer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture, status: int
) -> None:
    built, http = peer
    caplog.set_level(logging.DEBUG)
    built.state.fail_next(status)
    api = built.client(http)
    with pytest.raises(UpstreamError) as caught:
        await built.call(api)
    assert caught.value.retryable and caught.value.details["status"] == status
    assert_nothing_leaks(caught.value, caplog, built.secrets())
    await built.call(api)
    assert len(built.state.requests) == 2


async def test_timeout_is_retryable(
    peer: tuple[Peer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    built, http = peer
    caplog.set_level(logging.DEBUG)
    built.state.delay_next(2.0)
    # Half a second: the slow answer times out, and the next (quick) one fits even on a busy CI
    # machine (50 ms did not, once).
    api = built.client(http, timeout=0.5)
    with pytest.raises(UpstreamError) as caught:
        await built.call(api)
    assert caught.value.retryable and caught.value.details["timeout"] is True
    assert "timed out" in caught.value.message
    assert_nothing_leaks(caught.value, caplog, built.secrets())
    await built.call(api)  # the peer is quick again: the same client recovers
