"""Campaigns against call-originate batches: the same numbers handed over either way, on the dev
stack (`happ worker` and `happ api` processes of their own, the Temporal dev server, PostgreSQL,
the simulated voice assistant playing every call over real HTTP).

A campaign stores its recipients in PostgreSQL and starts their calls as their turn comes: its
workflow keeps at most two shares (`2 × max_concurrency`) of calls wanting or holding a slot, so
a campaign of 10,000 has about a hundred call workflows at a time and the worker and the server
hold memory for those. Call-originate batches start every call at once: 10,000 `OutboundCall`
workflows, each waiting in the queue for its slot, in the worker's cache and the server's state.

1. 10,000 numbers, on a fresh stack each way: as one campaign (`POST /sofa/campaigns`,
   max_concurrency 50), and as 10 call-originate batches of 1,000 sent one after another. Time
   to the answer (the 201; the tenth batch's 200), time to the first originate the simulated
   voice assistant receives, and the RSS of the worker and of the dev server 25 s after the
   answer (with the peak over those 25 s). Then the campaign is cancelled and its cancel waited
   for; the batches' stack is stopped (its dev server keeps history in memory: the 10,000 calls
   end with it). No leads are seeded here: the simulated NetHunt scans every record on each
   search, so each lookup finds nothing and the call goes on without CRM variables, alike on
   both sides. Targets: the campaign answers at least as fast (ratio ≤ 1×) and its worker holds
   less memory (ratio ≤ 1×).
2. Dialling throughput at a limit of 50 (`call_handling` concurrency_limit 50, the campaign's
   max_concurrency 50), each call short (answered, about 0.3 s on the line, post-call, analysis,
   CRM writes): 300 calls through one call-originate batch, then a campaign of 300 other numbers,
   on the campaign's stack once its cancel is done. Completed calls per second from the request
   to the last call (recipient) final in PostgreSQL, and the p50/p99 of each call's time from the
   request to its final row. Target: the campaign ≥ 0.8× the batch (it adds a workflow, a
   `start_calls` activity for each few calls and a progress signal at each status change).

One round of each (10,000 calls do not fit several rounds in a few minutes on 2 cores); the load
average before and after is in the figures.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import BenchError, Benchmark

RECIPIENTS = 10_000
BATCH = 1_000
RUNNING_SECONDS = 25
LIMIT = 50
CALLS = 300
THROUGHPUT_TARGET = 0.8
ANSWER_TARGET = 1.0
RSS_TARGET = 1.0
WARM_UP = 4
HANDLING = {"concurrency_limit": LIMIT, "calling_hours": None, "postcall_timeout_seconds": 120}
FINAL = ("completed", "exhausted", "failed", "cancelled", "expired", "suppressed")


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class _Dials:
    """When each originate reached the simulated voice assistant (the bench process's clock)."""

    def __init__(self, sims: Any) -> None:
        self.times: list[float] = []
        play: Callable[[Any], None] | None = sims.voice.on_originate

        def seen(call: Any) -> None:
            self.times.append(time.perf_counter())
            if play is not None:
                play(call)

        sims.voice.on_originate = seen

    def first_after(self, since: float) -> float | None:
        return next((t for t in self.times if t >= since), None)

    def between(self, since: float, until: float) -> int:
        return sum(1 for t in self.times if since <= t <= until)


class _Memory:
    """The worker's and the dev server's RSS, sampled twice a second: the peak while it runs."""

    def __init__(self, worker: int, temporal: int | None) -> None:
        self.pids = {"worker": worker, "temporal": temporal}
        self.peak = {"worker": 0.0, "temporal": 0.0}
        self._task: asyncio.Task[None] | None = None

    def now(self) -> dict[str, float]:
        return {name: round(_rss_mb(pid), 1) for name, pid in self.pids.items()}

    async def _sample(self) -> None:
        while True:
            for name, mb in self.now().items():
                self.peak[name] = max(self.peak[name], mb)
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@asynccontextmanager
async def _stack(pg_url: str, logs: Path) -> AsyncIterator[tuple[Any, str, _Dials]]:
    """A call stack of its own (database, dev server, simulator), one `happ worker` and one
    `happ api` process; the simulator plays every call to that API process. Warmed up: a few
    calls and a small campaign run to their end first."""
    from simulator.calls import Play
    from tests.e2e.call_stack import start_call_stack

    calls = await start_call_stack(pg_url, logs, Play.answered(30, talk_seconds=0.2), handling=HANDLING)
    try:
        calls.start_worker()
        api = await calls.start_api()
        gateway = f"{api}/{calls.integration}"
        voice = calls.sims.voice
        voice.call_events_url = f"{gateway}/webhook/call-events"
        voice.agent_init_url = f"{gateway}/webhook/agent-init"
        voice.postcall_url = calls.sims.elevenlabs.postcall_url = f"{gateway}/webhook/agent-postcall"
        dials = _Dials(calls.sims)
        await _warm_up(calls, api)
        yield calls, api, dials
    finally:
        await calls.close()


def _admin() -> dict[str, str]:
    from tests.e2e.call_stack import ADMIN

    return {"Authorization": f"Bearer {ADMIN}"}


def _numbers(start: int, count: int) -> list[str]:
    from tests.e2e.call_stack import phone

    return [phone(start + n) for n in range(count)]


async def _originate(calls: Any, api: str, numbers: list[str]) -> list[str]:
    resp = await calls.http.post(
        f"{api}/{calls.integration}/webhook/call-originate",
        json={"calls": [{"phone_number": n} for n in numbers]},
        headers=calls.hook,
        timeout=900,
    )
    if resp.status_code != 200 or not resp.json()["success"]:
        raise BenchError(f"call-originate answered {resp.status_code}: {resp.text[:500]}")
    return [c["callId"] for c in resp.json()["calls"]]


async def _create_campaign(calls: Any, api: str, name: str, numbers: list[str]) -> str:
    body = {
        "name": name,
        "max_concurrency": LIMIT,
        "recipients": [{"phone_number": n} for n in numbers],
    }
    resp = await calls.http.post(
        f"{api}/{calls.integration}/campaigns", json=body, headers=_admin(), timeout=900
    )
    if resp.status_code != 201 or resp.json()["accepted"] != len(numbers):
        raise BenchError(f"creating the campaign answered {resp.status_code}: {resp.text[:500]}")
    return str(resp.json()["campaign_id"])


async def _until(test: Callable[[], Awaitable[bool]], what: str, seconds: float, calls: Any) -> None:
    deadline = time.monotonic() + seconds
    while not await test():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not happen within {seconds:.0f} s\n{calls.worker_logs()}")
        await asyncio.sleep(0.3)


async def _calls_final(calls: Any, call_ids: list[str]) -> bool:
    done = await calls.resources.pool.fetchval(
        f"SELECT count(*) FROM {calls.integration}_calls WHERE call_id = ANY($1) AND status = ANY($2)",
        call_ids,
        list(FINAL),
    )
    return bool(done == len(call_ids))


async def _recipients_final(calls: Any, campaign_id: str, total: int) -> bool:
    done = await calls.resources.pool.fetchval(
        f"SELECT count(*) FROM {calls.integration}_campaign_recipients"
        " WHERE campaign_id = $1 AND status = ANY($2)",
        campaign_id,
        list(FINAL),
    )
    return bool(done == total)


async def _campaign_status(calls: Any, campaign_id: str) -> str:
    return str(
        await calls.resources.pool.fetchval(
            f"SELECT status FROM {calls.integration}_campaigns WHERE campaign_id = $1", campaign_id
        )
    )


async def _warm_up(calls: Any, api: str) -> None:
    """Imports, connections, the queue workflow and the campaign code path, on each stack alike."""
    numbers = _numbers(1_000, 2 * WARM_UP)
    calls.add_leads(numbers)
    call_ids = await _originate(calls, api, numbers[:WARM_UP])
    campaign_id = await _create_campaign(calls, api, "warm-up", numbers[WARM_UP:])
    await _until(lambda: _calls_final(calls, call_ids), "the warm-up calls", 180, calls)
    await _until(lambda: _recipients_final(calls, campaign_id, WARM_UP), "the warm-up campaign", 180, calls)


# 1. 10,000 numbers ---------------------------------------------------------------------------------


async def _many_as_batches(pg_url: str, logs: Path) -> dict[str, Any]:
    async with _stack(pg_url, logs) as (calls, api, dials):
        numbers = _numbers(100_000, RECIPIENTS)
        memory = _Memory(calls.workers[0].proc.pid, calls.temporal.pid)
        before = memory.now()
        memory.start()
        began = time.perf_counter()
        first_answer = 0.0
        for at in range(0, RECIPIENTS, BATCH):
            await _originate(calls, api, numbers[at : at + BATCH])
            first_answer = first_answer or time.perf_counter()
        answered = time.perf_counter()
        await asyncio.sleep(max(0.0, answered + RUNNING_SECONDS - time.perf_counter()))
        rss = memory.now()
        await memory.stop()
        first = dials.first_after(began)
        figures = {
            "answer_s": round(answered - began, 2),
            "first_batch_answer_s": round(first_answer - began, 2),
            "first_dial_after_first_answer_s": round(first - first_answer, 2) if first else None,
            "first_dial_after_send_s": round(first - began, 2) if first else None,
            "dialled_after_answer": dials.between(answered, answered + RUNNING_SECONDS),
            "dialled_from_send": dials.between(began, answered + RUNNING_SECONDS),
            "rss_before_mb": before,
            "rss_mb": rss,
            "rss_peak_mb": {k: round(v, 1) for k, v in memory.peak.items()},
        }
        # Nothing to cancel one by one: the stack stops, and with its in-memory dev server the
        # 10,000 calls. The worker and the API would drain for a while first: stopped at once.
        for process in calls.workers:
            process.kill()
        return figures


async def _many_as_campaign(calls: Any, api: str, dials: _Dials) -> dict[str, Any]:
    numbers = _numbers(200_000, RECIPIENTS)
    memory = _Memory(calls.workers[0].proc.pid, calls.temporal.pid)
    before = memory.now()
    memory.start()
    began = time.perf_counter()
    campaign_id = await _create_campaign(calls, api, "10,000", numbers)
    answered = time.perf_counter()
    await asyncio.sleep(max(0.0, answered + RUNNING_SECONDS - time.perf_counter()))
    rss = memory.now()
    await memory.stop()
    first = dials.first_after(began)
    dialled = dials.between(answered, answered + RUNNING_SECONDS)
    dialled_from_send = dials.between(began, answered + RUNNING_SECONDS)
    live = await calls.resources.pool.fetchval(
        f"SELECT count(*) FROM {calls.integration}_campaign_recipients"
        " WHERE campaign_id = $1 AND status <> 'pending' AND NOT status = ANY($2)",
        campaign_id,
        list(FINAL),
    )
    cancelling = time.perf_counter()
    resp = await calls.http.post(
        f"{api}/{calls.integration}/campaigns/{campaign_id}/cancel", headers=_admin(), timeout=300
    )
    if resp.status_code != 200:
        raise BenchError(f"cancel answered {resp.status_code}: {resp.text[:500]}")

    async def cancelled() -> bool:
        return await _campaign_status(calls, campaign_id) == "cancelled"

    await _until(cancelled, "the campaign's cancel", 240, calls)
    return {
        "answer_s": round(answered - began, 2),
        "first_dial_after_answer_s": round(first - answered, 2) if first else None,
        "first_dial_after_send_s": round(first - began, 2) if first else None,
        "dialled_after_answer": dialled,
        "dialled_from_send": dialled_from_send,
        "calls_in_flight_at_rss": int(live),
        "rss_before_mb": before,
        "rss_mb": rss,
        "rss_peak_mb": {k: round(v, 1) for k, v in memory.peak.items()},
        "cancelled_in_s": round(time.perf_counter() - cancelling, 1),
    }


# 2. Throughput at a limit of 50 --------------------------------------------------------------------


def _final_spread(started: datetime, finals: list[datetime]) -> dict[str, float]:
    seconds = sorted((f - started).total_seconds() for f in finals)
    return {
        "p50_s": round(statistics.median(seconds), 1),
        "p99_s": round(statistics.quantiles(seconds, n=100)[98], 1),
    }


async def _throughput_batch(calls: Any, api: str) -> dict[str, Any]:
    numbers = _numbers(300_000, CALLS)
    calls.add_leads(numbers)
    started = datetime.now(UTC)
    began = time.perf_counter()
    call_ids = await _originate(calls, api, numbers)
    await _until(lambda: _calls_final(calls, call_ids), "the batch's calls", 600, calls)
    seconds = time.perf_counter() - began
    rows = await calls.resources.pool.fetch(
        f"SELECT status, updated_at FROM {calls.integration}_calls WHERE call_id = ANY($1)", call_ids
    )
    return _throughput(rows, seconds, started)


async def _throughput_campaign(calls: Any, api: str) -> dict[str, Any]:
    numbers = _numbers(400_000, CALLS)
    calls.add_leads(numbers)
    started = datetime.now(UTC)
    began = time.perf_counter()
    campaign_id = await _create_campaign(calls, api, "throughput", numbers)
    await _until(
        lambda: _recipients_final(calls, campaign_id, CALLS), "the campaign's recipients", 600, calls
    )
    seconds = time.perf_counter() - began
    rows = await calls.resources.pool.fetch(
        f"SELECT status, updated_at FROM {calls.integration}_campaign_recipients WHERE campaign_id = $1",
        campaign_id,
    )

    async def finished() -> bool:
        return await _campaign_status(calls, campaign_id) == "finished"

    await _until(finished, "the campaign's finish", 60, calls)
    return _throughput(rows, seconds, started)


def _throughput(rows: list[Any], seconds: float, started: datetime) -> dict[str, Any]:
    completed = sum(1 for r in rows if r["status"] == "completed")
    return {
        "calls": len(rows),
        "completed": completed,
        "seconds": round(seconds, 1),
        "calls_per_second": round(completed / seconds, 2),
        **_final_spread(started, [r["updated_at"] for r in rows]),
    }


# The benchmark ---------------------------------------------------------------------------------


def _ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 3) if theirs else float("inf")


async def run() -> Benchmark:
    from happ_integ.embedded import EmbeddedPostgres
    from happ_integ.embedded.process import free_port

    loads = {"start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        pg = EmbeddedPostgres(root / "pg", port=free_port(), fsync=False)
        pg.start()
        try:
            batches = await _many_as_batches(pg.url, root / "batches")
            print(f"  campaigns: 10,000 as batches {batches}", flush=True)
            loads["after_batches"] = os.getloadavg()[0]
            async with _stack(pg.url, root / "campaign") as (calls, api, dials):
                campaign = await _many_as_campaign(calls, api, dials)
                print(f"  campaigns: 10,000 as a campaign {campaign}", flush=True)
                loads["after_campaign"] = os.getloadavg()[0]
                await asyncio.sleep(3)  # the cancelled calls' last writes settle
                batch_rate = await _throughput_batch(calls, api)
                print(f"  campaigns: {CALLS} calls as a batch {batch_rate}", flush=True)
                campaign_rate = await _throughput_campaign(calls, api)
                print(f"  campaigns: {CALLS} calls as a campaign {campaign_rate}", flush=True)
        finally:
            pg.stop()
    loads["end"] = os.getloadavg()[0]

    answer = _ratio(campaign["answer_s"], batches["answer_s"])
    worker_rss = _ratio(campaign["rss_mb"]["worker"], batches["rss_mb"]["worker"])
    temporal_rss = _ratio(campaign["rss_mb"]["temporal"], batches["rss_mb"]["temporal"])
    throughput = _ratio(campaign_rate["calls_per_second"], batch_rate["calls_per_second"])
    all_completed = campaign_rate["completed"] == batch_rate["completed"] == CALLS
    met = {
        "answer": answer <= ANSWER_TARGET,
        "worker_rss": worker_rss <= RSS_TARGET,
        "throughput": throughput >= THROUGHPUT_TARGET and all_completed,
    }

    def verdict(key: str) -> str:
        return "met" if met[key] else "NOT MET"

    def dial(figures: dict[str, Any], key: str, moment: str) -> str:
        value = figures[key]
        if value is None:
            return f"none after {moment}"
        return f"{abs(value):.2f} s {'after' if value >= 0 else 'before'} {moment}"

    lines = [
        f"{RECIPIENTS:,} numbers: campaign answered in {campaign['answer_s']:.2f} s, batches "
        f"({RECIPIENTS // BATCH} × {BATCH:,}, one after another) in {batches['answer_s']:.2f} s "
        f"(first batch {batches['first_batch_answer_s']:.2f} s); ratio {answer:.3f}× "
        f"(target ≤ {ANSWER_TARGET:g}×: {verdict('answer')})",
        f"first dial: campaign {dial(campaign, 'first_dial_after_answer_s', 'its answer')} "
        f"({dial(campaign, 'first_dial_after_send_s', 'sending')}); batches "
        f"{dial(batches, 'first_dial_after_first_answer_s', 'the first batch answered')} "
        f"({dial(batches, 'first_dial_after_send_s', 'sending the first')})",
        f"RSS {RUNNING_SECONDS} s after the answer: worker campaign {campaign['rss_mb']['worker']:.0f} MB, "
        f"batches {batches['rss_mb']['worker']:.0f} MB, ratio {worker_rss:.2f}× (target ≤ {RSS_TARGET:g}×: "
        f"{verdict('worker_rss')}); dev server campaign {campaign['rss_mb']['temporal']:.0f} MB, batches "
        f"{batches['rss_mb']['temporal']:.0f} MB, ratio {temporal_rss:.2f}×; peaks: worker "
        f"{campaign['rss_peak_mb']['worker']:.0f} / {batches['rss_peak_mb']['worker']:.0f} MB, dev server "
        f"{campaign['rss_peak_mb']['temporal']:.0f} / {batches['rss_peak_mb']['temporal']:.0f} MB; "
        f"dialled in those {RUNNING_SECONDS} s: campaign {campaign['dialled_after_answer']}, batches "
        f"{batches['dialled_after_answer']} ({batches['dialled_from_send']} from the first batch sent); "
        f"the campaign cancelled in {campaign['cancelled_in_s']:.0f} s",
        f"throughput at limit {LIMIT}, {CALLS} short calls: campaign {campaign_rate['calls_per_second']:.2f} "
        f"calls/s ({campaign_rate['completed']}/{CALLS} completed, p50 {campaign_rate['p50_s']:.0f} s, "
        f"p99 {campaign_rate['p99_s']:.0f} s to final), batch {batch_rate['calls_per_second']:.2f} calls/s "
        f"({batch_rate['completed']}/{CALLS} completed, p50 {batch_rate['p50_s']:.0f} s, p99 "
        f"{batch_rate['p99_s']:.0f} s); ratio {throughput:.2f}× (target ≥ {THROUGHPUT_TARGET}×: "
        f"{verdict('throughput')})",
        "load average (1 min, this benchmark's own processes included): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in loads.items()),
    ]
    return Benchmark(
        f"Campaigns ({RECIPIENTS:,} numbers as a campaign vs call-originate batches; throughput at limit {LIMIT})",
        f"answer ≤ {ANSWER_TARGET:g}×, worker RSS ≤ {RSS_TARGET:g}×, throughput ≥ {THROUGHPUT_TARGET}× batches",
        all(met.values()),
        "\n".join(lines),
        {
            "answer_ratio": answer,
            "worker_rss_ratio": worker_rss,
            "temporal_rss_ratio": temporal_rss,
            "throughput_ratio": throughput,
            "campaign_10000": campaign,
            "batches_10000": batches,
            "campaign_throughput": campaign_rate,
            "batch_throughput": batch_rate,
            "load_average_1min": {k: round(v, 2) for k, v in loads.items()},
        },
    )


if __name__ == "__main__":
    result = asyncio.run(run())
    print(result.name, result.line)
