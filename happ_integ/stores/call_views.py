"""Read-only views of an integration's calls that the operator console shows: today's figures from
`{integration}_calls` and the transcripts beside it, a call's transcripts, and the writes its
handlers made (`happ_writes`).

    now = await calls_now(pool, "sofa")                       # {"queued": 3, "dialing": 1, …}
    day = await period(pool, "sofa", timedelta(hours=24))     # outcomes, answer rate, talk time
    await transcripts(pool, "sofa", "c_…")                    # every stored conversation of a call
    await handler_writes(pool, "sofa", "c_…")                 # the write ledger of its handlers

Everything else the console (`api/console/`) shows it reads through the stores and routes the API uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from happ_integ.calls.models import FINAL_STATUSES, CallStatus
from happ_integ.stores.db import quote_ident, table_name
from happ_integ.stores.schema import pg_errors, to_json, with_core_schema

IN_FLIGHT = [s.value for s in CallStatus if s not in FINAL_STATUSES]
FINAL = sorted(s.value for s in FINAL_STATUSES)
# How an ended call is shown in the outcome chart: its last attempt's outcome, or, never dialled,
# its status. Attempt outcomes first, in the order a reader expects them.
OUTCOME_ORDER = (
    "answered",
    "short",
    "no_answer",
    "busy",
    "ring_timeout",
    "failed",
    "originate_failed",
    "cancelled",
    "suppressed",
    "exhausted",
)


@dataclass
class Period:
    """The calls that ended in a window, and what they came to."""

    outcomes: list[tuple[str, int]] = field(default_factory=list)
    ended: int = 0
    dialled: int = 0  # ended after at least one attempt
    answered: int = 0  # … whose last attempt was a conversation
    short: int = 0  # … whose last attempt was answered but too short
    talk_seconds: float | None = None  # average length of the conversations stored in the window
    conversations: int = 0


def _table(integration: str, kind: str) -> str:
    return quote_ident(table_name(integration, kind))


async def calls_now(pool: asyncpg.Pool, integration: str) -> dict[str, int]:
    """The calls not ended yet, by status (every such status, 0 included)."""
    with pg_errors():
        rows = await pool.fetch(
            f"SELECT status, count(*) AS n FROM {_table(integration, 'calls')}"
            " WHERE status = ANY($1::text[]) GROUP BY status",
            IN_FLIGHT,
        )
    counts = dict.fromkeys(IN_FLIGHT, 0)
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def period(pool: asyncpg.Pool, integration: str, window: timedelta) -> Period:
    """The calls that ended in the last `window` (their last status change in it)."""
    with pg_errors():
        rows = await pool.fetch(
            f"""SELECT CASE WHEN attempt > 0 AND outcome IS NOT NULL THEN outcome ELSE status END AS label,
                       attempt > 0 AS dialled, count(*) AS n
                FROM {_table(integration, "calls")}
                WHERE status = ANY($1::text[]) AND updated_at > now() - $2::interval
                GROUP BY 1, 2""",
            FINAL,
            window,
        )
        talk = await pool.fetchrow(
            f"""SELECT avg(d) AS mean, count(d) AS n FROM (
                    SELECT CASE WHEN jsonb_typeof(body -> 'metadata' -> 'call_duration_secs') = 'number'
                                THEN (body -> 'metadata' ->> 'call_duration_secs')::float END AS d
                    FROM {_table(integration, "call_documents")}
                    WHERE kind = 'transcript' AND created_at > now() - $1::interval) t""",
            window,
        )
    result = Period()
    by_label: dict[str, int] = {}
    for row in rows:
        by_label[row["label"]] = by_label.get(row["label"], 0) + row["n"]
        result.ended += row["n"]
        if row["dialled"]:
            result.dialled += row["n"]
            result.answered += row["n"] if row["label"] == "answered" else 0
            result.short += row["n"] if row["label"] == "short" else 0
    order = {name: i for i, name in enumerate(OUTCOME_ORDER)}
    result.outcomes = sorted(by_label.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    if talk is not None and talk["n"]:
        result.talk_seconds = float(talk["mean"])
        result.conversations = talk["n"]
    return result


async def transcripts(pool: asyncpg.Pool, integration: str, call_id: str) -> list[dict[str, Any]]:
    """The conversations stored for a call (one per answered attempt), oldest first: `{"id",
    "conversation_id", "created_at", "turns": [{"role", "message", "time_in_call_secs"}]}`."""
    with pg_errors():
        rows = await pool.fetch(
            f"""SELECT id, conversation_id, body, created_at FROM {_table(integration, "call_documents")}
                WHERE call_id = $1 AND kind = 'transcript' ORDER BY created_at""",
            call_id,
        )
    found = []
    for row in rows:
        body = row["body"] if isinstance(row["body"], dict) else {}
        turns = body.get("transcript")
        found.append(
            {
                "id": row["id"],
                "conversation_id": row["conversation_id"],
                "created_at": row["created_at"],
                "turns": [t for t in turns if isinstance(t, dict)] if isinstance(turns, list) else [],
            }
        )
    return found


@dataclass(frozen=True)
class LedgerWrite:
    handler: str
    step: str  # the activity's id within the handler's run
    done: bool
    started_at: datetime
    result: Any


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def handler_writes(pool: asyncpg.Pool, integration: str, call_id: str) -> list[LedgerWrite]:
    """The writes the call's handlers made (its post-call's CRM updates), from the write ledger:
    one row per write, keyed `{integration}:handler:{handler}:{call_id}/{activity}`."""
    prefix = f"{integration}:handler:"
    pattern = f"{_like(prefix)}%:{_like(call_id)}/%"

    async def read() -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await pool.fetch(
            r"""SELECT key, done, result, started_at FROM happ_writes
                WHERE integration = $1 AND key LIKE $2 ESCAPE '\' ORDER BY started_at, key""",
            integration,
            pattern,
        )
        return rows

    writes = []
    for row in await with_core_schema(pool, read):
        run, _, step = row["key"].rpartition("/")
        handler = run.removeprefix(prefix).rsplit(":", 1)[0]
        writes.append(LedgerWrite(handler, step, row["done"], row["started_at"], to_json(row["result"])))
    return writes
