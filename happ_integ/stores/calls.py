"""The calls of an integration with a call flow: one row per call in `{integration}_calls`, and the
documents a call produced (transcripts, audio, webhooks that matched no call) beside it.

    calls = CallStore(pool, "sofa")
    call_id, created = await calls.claim("c_1", "+380994829573", "sofa:call:c_1", {})
    await calls.record(CallRecord(integration="sofa", call_id="c_1", status=CallStatus.DIALING, attempt=1))
    await calls.in_flight_by_phone("+380994829573")        # the row, or None
    doc = await calls.store_document("transcript", body=data, conversation_id="conv_1", call_id="c_1")

The workflow owns a call's state; this table is its record, written at every status change, so
calls can be listed and agent-init can answer from it without asking the workflow. At most one
call per number is in flight: a unique index says so, whoever inserts.
"""

from __future__ import annotations

import base64
import binascii
import builtins
from typing import Any

import asyncpg

from happ_integ.calls.contracts import CallRecord
from happ_integ.calls.models import FINAL_STATUSES, CallStatus, PostcallEvent, PostcallInfo
from happ_integ.clients.elevenlabs import Conversation
from happ_integ.errors import ValidationFailed
from happ_integ.stores.db import quote_ident, table_name
from happ_integ.stores.migrations import Migration
from happ_integ.stores.paging import newest_first, one_page
from happ_integ.stores.schema import pg_errors, to_json

_FINAL = ", ".join(f"'{status.value}'" for status in sorted(FINAL_STATUSES))
IN_FLIGHT = f"status NOT IN ({_FINAL})"

CALL_FLOW_MIGRATIONS = (
    Migration(
        "happ_calls_001",
        f"""
        CREATE TABLE {{{{calls}}}} (
            call_id         text PRIMARY KEY,
            workflow_id     text NOT NULL,
            phone           text NOT NULL,
            status          text NOT NULL,
            attempt         int NOT NULL DEFAULT 0,
            next_attempt_at timestamptz,
            provider_call_id text,
            conversation_id text,
            outcome         text,
            reason          text,
            variables       jsonb,
            metadata        jsonb NOT NULL DEFAULT '{{}}',
            result          jsonb,
            created_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX ON {{{{calls}}}} (phone) WHERE {IN_FLIGHT};
        CREATE INDEX ON {{{{calls}}}} (created_at DESC, call_id DESC);
        CREATE INDEX ON {{{{calls}}}} (status, created_at DESC);
        CREATE INDEX ON {{{{calls}}}} (conversation_id) WHERE conversation_id IS NOT NULL;
        CREATE INDEX ON {{{{calls}}}} (provider_call_id) WHERE provider_call_id IS NOT NULL;
        CREATE TABLE {{{{call_documents}}}} (
            id              text PRIMARY KEY,
            kind            text NOT NULL,
            call_id         text,
            conversation_id text,
            body            jsonb,
            data            bytea,
            created_at      timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ON {{{{call_documents}}}} (call_id);
        """,
    ),
    Migration(
        "happ_calls_002",
        # Webhooks stored before their call was known, looked up when a call learns the
        # conversation id they name.
        "CREATE INDEX ON {{call_documents}} (conversation_id) WHERE call_id IS NULL",
    ),
    Migration(
        "happ_calls_003",
        # `suppressed` became a final status: the one-call-per-number index is rebuilt with it, so
        # a number whose call was suppressed can be called again once it is off the list.
        f"""
        DO $$
        DECLARE idx regclass;
        BEGIN
            FOR idx IN SELECT indexrelid::regclass FROM pg_index
                       WHERE indrelid = '{{{{calls}}}}'::regclass AND indisunique AND NOT indisprimary
            LOOP
                EXECUTE 'DROP INDEX ' || idx;
            END LOOP;
        END $$;
        CREATE UNIQUE INDEX ON {{{{calls}}}} (phone) WHERE {IN_FLIGHT};
        """,
    ),
    Migration(
        "happ_calls_004",
        # By time: the console's figures read the calls that ended in the last day or week
        # (`updated_at`) and the transcripts stored in it; the daily retention run deletes the
        # oldest documents in batches (`ORDER BY created_at LIMIT`), a whole-table sort per batch
        # without this index.
        """
        CREATE INDEX ON {{calls}} (updated_at);
        CREATE INDEX ON {{call_documents}} (created_at);
        """,
    ),
)
# The kinds under which a verified post-call webhook that matched no call is stored.
UNMATCHED_PREFIX = "unmatched_"

_COLUMNS = (
    "call_id, workflow_id, phone, status, attempt, next_attempt_at, provider_call_id, conversation_id,"
    " outcome, reason, variables, metadata, result, created_at, updated_at"
)


class CallStore:
    """The calls and call documents of one integration; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool, integration: str) -> None:
        self.pool = pool
        self.integration = integration
        self.calls = quote_ident(table_name(integration, "calls"))
        self.documents = quote_ident(table_name(integration, "call_documents"))

    async def claim(
        self, call_id: str, phone: str, workflow_id: str, metadata: dict[str, Any]
    ) -> tuple[str, bool]:
        """Insert a new call for `phone`, or return the one already in flight: `(call_id, created)`."""
        for _ in range(3):
            with pg_errors():
                created = await self.pool.fetchval(
                    f"""INSERT INTO {self.calls} (call_id, workflow_id, phone, status, metadata)
                        VALUES ($1, $2, $3, 'scheduled', $4)
                        ON CONFLICT (phone) WHERE {IN_FLIGHT} DO NOTHING RETURNING call_id""",
                    call_id,
                    workflow_id,
                    phone,
                    metadata,
                )
                if created:
                    return created, True
                existing = await self.pool.fetchval(
                    f"SELECT call_id FROM {self.calls} WHERE phone = $1 AND {IN_FLIGHT}", phone
                )
            if existing:
                return existing, False
            # The call in flight ended between the two statements: try again.
        raise ValidationFailed("the number's call changed state three times in a row: try again")

    async def forget_claim(self, call_id: str) -> None:
        """Remove a call whose workflow never started (Temporal refused it), so the number is free."""
        with pg_errors():
            await self.pool.execute(
                f"DELETE FROM {self.calls} WHERE call_id = $1 AND status = 'scheduled' AND attempt = 0",
                call_id,
            )

    async def ensure(self, call_id: str, phone: str, workflow_id: str, metadata: dict[str, Any]) -> None:
        """The row of a call started without the gateway (a test, the CLI), if it has none."""
        with pg_errors():
            await self.pool.execute(
                f"""INSERT INTO {self.calls} (call_id, workflow_id, phone, status, metadata)
                    VALUES ($1, $2, $3, 'scheduled', $4) ON CONFLICT DO NOTHING""",
                call_id,
                workflow_id,
                phone,
                metadata,
            )

    async def record(self, rec: CallRecord) -> None:
        """Write one status change; ids, variables and result are kept when not given, and the
        reason is the call's current one (None clears it: a cap's reason once the cap let it through)."""
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.calls} SET status = $2, attempt = $3, next_attempt_at = $4,
                        provider_call_id = COALESCE($5, provider_call_id),
                        conversation_id = COALESCE($6, conversation_id),
                        outcome = COALESCE($7, outcome), reason = $8,
                        variables = COALESCE($9, variables), result = COALESCE($10, result),
                        updated_at = now()
                    WHERE call_id = $1""",
                rec.call_id,
                rec.status.value,
                rec.attempt,
                rec.next_attempt_at,
                rec.provider_call_id,
                rec.conversation_id,
                rec.outcome.value if rec.outcome else None,
                rec.reason,
                rec.variables,
                rec.result,
            )

    async def get(self, call_id: str) -> dict[str, Any] | None:
        return await self._one(f"SELECT {_COLUMNS} FROM {self.calls} WHERE call_id = $1", call_id)

    async def in_flight_by_phone(self, phone: str) -> dict[str, Any] | None:
        return await self._one(f"SELECT {_COLUMNS} FROM {self.calls} WHERE phone = $1 AND {IN_FLIGHT}", phone)

    async def by_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        return await self._one(
            f"SELECT {_COLUMNS} FROM {self.calls} WHERE conversation_id = $1 ORDER BY created_at DESC LIMIT 1",
            conversation_id,
        )

    async def by_provider_id(self, provider_call_id: str) -> dict[str, Any] | None:
        return await self._one(
            f"SELECT {_COLUMNS} FROM {self.calls} WHERE provider_call_id = $1 ORDER BY created_at DESC LIMIT 1",
            provider_call_id,
        )

    async def waiting_postcall_by_phone(self, phone: str) -> dict[str, Any] | None:
        return await self._one(
            f"SELECT {_COLUMNS} FROM {self.calls} WHERE phone = $1 AND status = $2"
            " ORDER BY created_at DESC LIMIT 1",
            phone,
            CallStatus.WAITING_POSTCALL.value,
        )

    async def list(
        self, status: CallStatus | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; pass the returned cursor back for the next page (None: no more)."""
        filters = [("status = {}", status.value)] if status is not None else []
        sql, params = newest_first(
            f"SELECT {_COLUMNS} FROM {self.calls}", "call_id", str, filters, limit, cursor
        )
        with pg_errors():
            rows = [dict(r) for r in await self.pool.fetch(sql, *params)]
        page, next_cursor = one_page(rows, limit, lambda r: (r["created_at"], r["call_id"]))
        return [to_json(r) for r in page], next_cursor

    async def store_document(
        self,
        kind: str,
        *,
        key: str,
        body: Any = None,
        data: bytes | None = None,
        call_id: str | None = None,
        conversation_id: str | None = None,
    ) -> str:
        """Store a document once under `{kind}:{key}` (a redelivered webhook stores nothing new)."""
        document_id = f"{kind}:{key}"
        with pg_errors():
            await self.pool.execute(
                f"""INSERT INTO {self.documents} (id, kind, call_id, conversation_id, body, data)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (id) DO UPDATE SET call_id = COALESCE({self.documents}.call_id, EXCLUDED.call_id)""",
                document_id,
                kind,
                call_id,
                conversation_id,
                body,
                data,
            )
        return document_id

    async def learn_ids(
        self, call_id: str, provider_call_id: str | None, conversation_id: str | None
    ) -> None:
        """The ids originate answered, written at once: a webhook that names them finds the call
        even before the workflow's next status change."""
        if not provider_call_id and not conversation_id:
            return
        with pg_errors():
            await self.pool.execute(
                f"""UPDATE {self.calls} SET provider_call_id = COALESCE($2, provider_call_id),
                        conversation_id = COALESCE($3, conversation_id), updated_at = now()
                    WHERE call_id = $1""",
                call_id,
                provider_call_id,
                conversation_id,
            )

    async def unmatched(self, conversation_id: str) -> builtins.list[dict[str, Any]]:
        """Verified webhooks about `conversation_id` stored before any call was known to hold it,
        oldest first: `{"id", "kind", "body"}` (the body as `store_document` kept it)."""
        with pg_errors():
            rows = await self.pool.fetch(
                f"""SELECT id, kind, body FROM {self.documents}
                    WHERE conversation_id = $1 AND call_id IS NULL AND kind LIKE $2
                    ORDER BY created_at""",
                conversation_id,
                UNMATCHED_PREFIX + "%",
            )
        return [dict(r) for r in rows]

    async def claim_document(self, document_id: str, call_id: str) -> None:
        """Link a stored document to its call (a matched webhook is not matched again)."""
        with pg_errors():
            await self.pool.execute(
                f"UPDATE {self.documents} SET call_id = $2 WHERE id = $1 AND call_id IS NULL",
                document_id,
                call_id,
            )

    async def store_postcall(
        self, call_id: str, kind: str, data: dict[str, Any], *, key: str, conversation_id: str | None
    ) -> PostcallEvent | None:
        """Store what a verified post-call webhook of `call_id` carries (the transcript, the audio)
        and return what its workflow gets: the summary and the ids (None for a kind it ignores).
        Raises `ValidationFailed` for audio that is not base64 or a transcript that is not a
        conversation."""
        if kind == "post_call_audio":
            try:
                audio = base64.b64decode(str(data.get("full_audio") or ""), validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed("data.full_audio is not base64", field="data.full_audio") from None
            document = await self.store_document(
                "audio", key=key, data=audio, call_id=call_id, conversation_id=conversation_id
            )
            return PostcallEvent(
                type="post_call_audio",
                audio_document_id=document,
                info=PostcallInfo(conversation_id=conversation_id),
            )
        if kind == "call_initiation_failure":
            reason = str(data.get("failure_reason") or "")[:64] or None
            return PostcallEvent(
                type="call_initiation_failure",
                failure_reason=reason,
                info=PostcallInfo(conversation_id=conversation_id),
            )
        if kind != "post_call_transcription":
            return None
        conversation = Conversation.from_webhook_data(data)
        document = await self.store_document(
            "transcript", key=key, body=data, call_id=call_id, conversation_id=conversation_id
        )
        info = PostcallInfo(
            conversation_id=conversation_id,
            document_id=document,
            duration_seconds=conversation.duration_seconds,
            call_successful=conversation.call_successful,
            transcript_summary=conversation.transcript_summary,
            data_collection_results=_collected_values(conversation.data_collection_results),
        )
        return PostcallEvent(type="post_call_transcription", info=info)

    async def document(self, document_id: str) -> dict[str, Any] | None:
        with pg_errors():
            row = await self.pool.fetchrow(
                f"SELECT id, kind, call_id, conversation_id, body, created_at FROM {self.documents} WHERE id = $1",
                document_id,
            )
        return to_json(dict(row)) if row else None

    async def _one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        with pg_errors():
            row = await self.pool.fetchrow(sql, *params)
        return to_json(dict(row)) if row else None


def _collected_values(results: dict[str, Any]) -> dict[str, Any]:
    """`{"webinar": {"value": "yes", "rationale": …}}` → `{"webinar": "yes"}`: the values travel, the rest stays stored."""
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in results.items()}
