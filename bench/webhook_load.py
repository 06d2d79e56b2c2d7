"""Webhook deliveries under load: the call events and post-calls of many calls in flight, sent at
two API replicas at once, with duplicates and bad signatures mixed in.

    plans = deliveries_for(calls, voice_state, duplicates=0.10, bad_signatures=0.05)
    figures = await deliver(plans, replicas=["http://127.0.0.1:3001", "http://127.0.0.1:3011"],
                            integration="sofa")
    figures.per_second, figures.p99_ms, figures.refused, figures.duplicates

Each call gets call_start, call_end, its signed post_call_transcription and post_call_audio, in
that order (four deliveries: 500 calls make 2,000 before duplicates and forgeries); calls go in
parallel (`concurrency` deliveries in flight). A duplicate is the same delivery sent again
to the other replica; a bad signature is a post-call signed with another secret. The end-to-end
load test (`tests/e2e/test_webhook_load.py`, which `make bench` runs after the benchmarks) sends
it and asserts on the figures; `bench.call_throughput` sends each call's events with it.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator import sign_elevenlabs
from simulator.calls import Play, SimCall
from simulator.elevenlabs_state import audio_payload, postcall_payload
from simulator.voice import VoiceState, call_event


@dataclass
class PlannedDelivery:
    """One webhook delivery the load will send, and the status it must get (the simulator's
    `simulator.calls.Delivery` is one a played call sent)."""

    kind: str
    body: bytes
    headers: dict[str, str]
    expect: int  # 200, or 401 for a bad signature
    duplicate: bool = False


@dataclass
class Figures:
    sent: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    refused: int = 0
    duplicates: int = 0
    retried: int = 0
    unexpected: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[98] if len(self.latencies_ms) >= 2 else 0.0

    def line(self) -> str:
        return (
            f"{self.sent} deliveries at 2 replicas: {self.per_second:.0f}/s, p99 {self.p99_ms:.0f} ms, "
            f"{self.refused} bad signatures refused, {self.duplicates} duplicates absorbed, "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


def deliveries_for(
    calls: list[SimCall], voice: VoiceState, *, duplicates: float, bad_signatures: float, seed: int = 7
) -> list[list[PlannedDelivery]]:
    """One ordered list of deliveries per call."""
    rng = random.Random(seed)
    plans: list[list[PlannedDelivery]] = []
    now = int(time.time())
    for call in calls:
        plan: list[PlannedDelivery] = []
        for kind, event in (
            ("call_start", call_event(call, "call_start")),
            ("call_end", call_event(call, "call_end", 40)),
        ):
            # The voice assistant's own headers: its sender token (set by the call stack).
            headers = {"Content-Type": "application/json", **voice.webhook_headers}
            plan.append(PlannedDelivery(kind, json.dumps(event).encode(), headers, 200))
        body = json.dumps(
            postcall_payload(voice, call, Play.answered(40), {}, now), ensure_ascii=False
        ).encode()
        if rng.random() < bad_signatures:
            forged = {
                "Content-Type": "application/json",
                "ElevenLabs-Signature": sign_elevenlabs("forged", body, now),
            }
            plan.append(PlannedDelivery("post_call_transcription", body, forged, 401))
        signed = {
            "Content-Type": "application/json",
            "ElevenLabs-Signature": sign_elevenlabs(voice.webhook_secret, body, now),
        }
        plan.append(PlannedDelivery("post_call_transcription", body, signed, 200))
        # A few seconds of silence as the recording (8 kHz, 8-bit): small, so the load is the webhooks.
        audio = json.dumps(audio_payload(voice, call, now, b"\x80" * 16_000)).encode()
        audio_signed = {
            "Content-Type": "application/json",
            "ElevenLabs-Signature": sign_elevenlabs(voice.webhook_secret, audio, now),
        }
        plan.append(PlannedDelivery("post_call_audio", audio, audio_signed, 200))
        with_duplicates: list[PlannedDelivery] = []
        for delivery in plan:
            with_duplicates.append(delivery)
            if delivery.expect == 200 and rng.random() < duplicates:
                with_duplicates.append(
                    PlannedDelivery(delivery.kind, delivery.body, delivery.headers, 200, duplicate=True)
                )
        plans.append(with_duplicates)
    return plans


async def deliver(
    plans: list[list[PlannedDelivery]],
    *,
    replicas: list[str],
    integration: str,
    concurrency: int = 48,
    retry_elsewhere: bool = False,
) -> Figures:
    """Send every plan; with `retry_elsewhere`, a delivery that got no answer or a 5xx is sent
    again to the next replica, as a sender behind a load balancer would."""
    figures = Figures()
    paths = {
        "call_start": "webhook/call-events",
        "call_end": "webhook/call-events",
        "post_call_transcription": "webhook/agent-postcall",
        "post_call_audio": "webhook/agent-postcall",
    }
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:

        async def one(i: int, plan: list[PlannedDelivery]) -> None:
            for j, delivery in enumerate(plan):
                async with gate:
                    began = time.perf_counter()
                    resp: httpx.Response | None = None
                    for tried in range(len(replicas) * 3 if retry_elsewhere else 1):
                        target = replicas[(i + j + tried + (1 if delivery.duplicate else 0)) % len(replicas)]
                        url = f"{target}/{integration}/{paths[delivery.kind]}"
                        try:
                            resp = await http.post(url, content=delivery.body, headers=delivery.headers)
                        except httpx.HTTPError as exc:
                            resp = None
                            if not retry_elsewhere:
                                figures.unexpected.append(f"{delivery.kind} to {url}: {type(exc).__name__}")
                        if resp is not None and resp.status_code < 500:
                            break
                        if retry_elsewhere:
                            figures.retried += 1
                            await asyncio.sleep(0.2)
                    status = resp.status_code if resp is not None else 0
                    figures.latencies_ms.append((time.perf_counter() - began) * 1000)
                figures.sent += 1
                figures.statuses[status] = figures.statuses.get(status, 0) + 1
                if status == 401 and delivery.expect == 401:
                    figures.refused += 1
                elif status != delivery.expect or status >= 500:
                    text = resp.text[:200] if resp is not None else ""
                    figures.unexpected.append(
                        f"{delivery.kind}: {status}, expected {delivery.expect}: {text}"
                    )
                if delivery.duplicate and status == 200:
                    figures.duplicates += 1

        began = time.perf_counter()
        await asyncio.gather(*(one(i, plan) for i, plan in enumerate(plans)))
        figures.seconds = time.perf_counter() - began
    return figures


def summary(figures: Figures) -> dict[str, Any]:
    return {
        "sent": figures.sent,
        "per_second": round(figures.per_second, 1),
        "p99_ms": round(figures.p99_ms, 1),
        "refused": figures.refused,
        "duplicates": figures.duplicates,
        "statuses": figures.statuses,
    }
