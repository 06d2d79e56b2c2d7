"""Loopback peers for demos and end-to-end tests: NetHunt, KeyCRM, the voice-assistant SaaS (with
the ElevenLabs agent's webhooks), the ElevenLabs API and an OpenAI-compatible model, speaking the
real services' paths, payloads and auth.

    from simulator.nethunt import NetHuntState, create_nethunt_app
    state = NetHuntState()
    folder = state.add_folder("Leads")
    state.add_record(folder, {"Name": "Іван", "Phone": ["+380994829573"]})
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_nethunt_app(state)))
    ...
    state.fail_next(503, times=2)          # the next two requests answer 503
    state.fail_next(429, headers={"Retry-After": "7"})
    state.delay_next(2.0)                  # the next request answers after 2 s (a client timeout)
    state.requests[-1].json                # what the client sent

`python -m simulator.app --port 3100` serves them all on one port (see `simulator.app`).
This module holds what they share: the request log, failure and delay injection and ElevenLabs signing
(`sign_elevenlabs`, `verify_elevenlabs`). It imports none of the peers; a simulated call's pieces
go one way, each module importing only those before it:

    simulator (shared) ← calls (SimCall, Play, Delivery) ← elevenlabs_state (ElevenLabsState, the
    outbound dials, conversation and webhook bodies) ← voice, elevenlabs_calls ← elevenlabs ← app
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class RecordedRequest:
    """One request as the simulator received it; `path` is relative to the service's own root."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Failure(NamedTuple):
    """An injected answer: `status`, JSON `body` and extra response `headers` (`Retry-After` …)."""

    status: int
    body: Any
    headers: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple default, never mutated


@dataclass
class SimState:
    """Request log plus failure and delay injection, shared by every simulated service.

    `fail_next(500, times=2)` makes the next two requests (any path) answer that status with
    `body` (default `{"message": "simulated failure"}`) and `headers` before auth or routing runs;
    they are still recorded, so a test can count retries. `delay_next(1.5)` holds the next
    request that long before it is handled, so a client's timeout can fire. `go_down(503)` makes
    every request answer that status until `come_back()` (an outage of unknown length); both
    clear what `fail_next` and `delay_next` left pending.
    """

    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: deque[Failure] = field(default_factory=deque, repr=False)
    _delays: deque[float] = field(default_factory=deque, repr=False)
    _down: Failure | None = field(default=None, repr=False)

    def fail_next(
        self, status: int = 500, times: int = 1, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        payload = body if body is not None else {"message": "simulated failure"}
        for _ in range(times):
            self._failures.append(Failure(status, payload, dict(headers or {})))

    def take_failure(self) -> Failure | None:
        if self._failures:
            return self._failures.popleft()
        return self._down

    def go_down(self, status: int = 503, body: Any = None) -> None:
        self._failures.clear()
        self._delays.clear()
        self._down = Failure(status, body if body is not None else {"message": "simulated outage"}, {})

    def come_back(self) -> None:
        self._failures.clear()
        self._delays.clear()
        self._down = None

    @property
    def pending_delays(self) -> int:
        return len(self._delays)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self._delays.extend([seconds] * times)

    def take_delay(self) -> float:
        return self._delays.popleft() if self._delays else 0.0

    def clear_requests(self) -> None:
        self.requests.clear()

    def requests_to(self, method: str, path_prefix: str = "") -> list[RecordedRequest]:
        """`state.requests_to("POST", "/api/v1/zapier/actions/")`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]


class RecordingMiddleware:
    """ASGI middleware: log each HTTP request into `state.requests`, then answer an injected failure
    or pass the (replayed) body on to the app."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.state.requests.append(_record(scope, body))
        delay = self.state.take_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        failure = self.state.take_failure()
        if failure is not None:
            await _send_json(send, failure.status, failure.body, failure.headers)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _record(scope: Scope, body: bytes) -> RecordedRequest:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    return RecordedRequest(scope["method"], path, query, headers, payload, body)


async def _send_json(send: Send, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
    raw = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def bearer_ok(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` compared in constant time."""
    given = (header or "").removeprefix("Bearer ")
    return bool(header and header.startswith("Bearer ")) and hmac.compare_digest(
        given.encode(), token.encode()
    )


def digits(text: str) -> str:
    """`digits("+380 99 482")` → `"38099482"` (phone comparison in the simulators)."""
    return "".join(ch for ch in text if ch.isdigit())


def sign_elevenlabs(secret: str, body: bytes, ts: int) -> str:
    """The `ElevenLabs-Signature` header value: `t=<ts>,v0=<hex HMAC-SHA256(secret, f"{ts}.{body}")>`."""
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v0={mac}"


def verify_elevenlabs(
    secret: str, body: bytes, header: str | None, *, tolerance: int = 1800, now: float | None = None
) -> bool:
    """Check a signature the way ElevenLabs documents it (30 minutes of tolerance, constant time)."""
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v0" not in parts:
        return False
    if abs((time.time() if now is None else now) - int(parts["t"])) > tolerance:
        return False
    expected = sign_elevenlabs(secret, body, int(parts["t"])).split("v0=", 1)[1]
    return hmac.compare_digest(expected, parts["v0"])
