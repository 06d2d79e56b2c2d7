"""A NetHunt integration API on loopback: same paths under `/api/v1/zapier`, Basic auth, JSON.

    state = NetHuntState(email="me@example.com", api_key="k")
    folder = state.add_folder("Leads")
    rid = state.add_record(folder, {"Name": "Іван", "Phone": ["+380994829573"], "Status": "New"})
    app = create_nethunt_app(state)      # HAPP_NETHUNT_API_URL=http://127.0.0.1:PORT/api/v1/zapier
    state.records[rid].fields["Status"]  # after the code under test updated it
    state.comments                       # [{"commentId", "recordId": rid, "text": "…", "createdAt"}]
    state.call_logs                      # [{"callLogId", "recordId", "text", "time", "duration", "createdAt"}]

Actions: create-record, update-record (`fieldActions`), create-comment, create-call-log (`text`,
optional ISO `time` and `duration` in minutes). Polling triggers `new-comment/{folderId}` and
`new-call-log/{folderId}` list a folder's items newest first (`since`, `limit` default 100), the
way NetHunt's Zapier triggers do. Search syntax and field actions: see `simulator.nethunt_query`.
Timestamps come from `state.clock` (an aware datetime), so a test can pin them.
"""

from __future__ import annotations

import base64
import hmac
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState
from simulator.nethunt_query import apply_action, matches, search_terms

BASE = "/api/v1/zapier"
COMMENT_KEYS = ("recordId", "commentId", "text", "createdAt")
CALL_LOG_KEYS = ("recordId", "callLogId", "text", "time", "duration", "createdAt")
_EPOCH = datetime.min.replace(tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """NetHunt's timestamp format: `2025-03-01T10:00:00.123Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 date-time (naive means UTC), or None. A `+hh:mm` offset whose `+` a query
    string turned into a space still parses, since hand-written polling URLs rarely encode it."""
    for candidate in (text.strip(), "+".join(text.strip().rsplit(" ", 1))):
        try:
            moment = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _now() -> str:
    return stamp(_utcnow())


@dataclass
class SimRecord:
    id: str
    folder_id: str
    fields: dict[str, Any]
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    def view(self) -> dict[str, Any]:
        return {
            "recordId": self.id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "recordUrl": f"https://nethunt.com/service#{self.folder_id}/{self.id}",
            "fields": dict(self.fields),
        }


@dataclass
class NetHuntState(SimState):
    """Folders, records, comments and call logs in memory, plus the credentials the simulator accepts."""

    email: str = "sim@example.com"
    api_key: str = "sim-nethunt-key"
    folders: dict[str, str] = field(default_factory=dict)
    records: dict[str, SimRecord] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    call_logs: list[dict[str, Any]] = field(default_factory=list)
    clock: Callable[[], datetime] = _utcnow
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def _new_id(self, kind: str) -> str:
        return f"{next(self._ids):024x}" if kind == "record" else f"f{next(self._ids):023x}"

    def now(self) -> str:
        return stamp(self.clock())

    def add_folder(self, name: str, folder_id: str | None = None) -> str:
        folder_id = folder_id or self._new_id("folder")
        self.folders[folder_id] = name
        return folder_id

    def add_record(self, folder_id: str, fields: dict[str, Any], record_id: str | None = None) -> str:
        now = self.now()
        record = SimRecord(record_id or self._new_id("record"), folder_id, dict(fields), now, now)
        self.records[record.id] = record
        return record.id

    def search(self, folder_id: str, query: str) -> list[SimRecord]:
        terms = search_terms(query)
        return [
            r
            for r in self.records.values()
            if r.folder_id == folder_id and all(matches(r.fields, f, v) for f, v in terms)
        ]

    def feed(
        self, items: list[dict[str, Any]], folder_id: str, since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """What a polling trigger lists: `items` of the folder's records, newest first."""

        def created(item: dict[str, Any]) -> datetime:
            return parse_time(str(item.get("createdAt") or "")) or _EPOCH

        mine = [
            item
            for item in items
            if (record := self.records.get(item.get("recordId", ""))) and record.folder_id == folder_id
        ]
        fresh = [item for item in mine if since is None or created(item) >= since]
        # Reversed first: sorting is stable, so items stamped in the same millisecond stay newest first.
        return sorted(reversed(fresh), key=created, reverse=True)[:limit]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:  # a malformed body is the client's mistake: let the check below answer 400
        return None


def _authorized(state: NetHuntState, header: str | None) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        email, _, key = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    ok_email = hmac.compare_digest(email.encode(), state.email.encode())
    return ok_email & hmac.compare_digest(key.encode(), state.api_key.encode())


def _call_log_fields(body: Any, now: str) -> dict[str, Any] | str:
    """`{"text", "time", "duration"}` from a create-call-log body, or why it is refused."""
    if not isinstance(body, dict) or not str(body.get("text") or "").strip():
        return "text is required"
    time = body.get("time")
    if time is not None and (not isinstance(time, str) or parse_time(time) is None):
        return "time must be an ISO-8601 date-time"
    duration = body.get("duration")
    valid_number = isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0
    if duration is not None and not valid_number:
        return "duration must be a non-negative number of minutes"
    return {"text": body["text"], "time": time or now, "duration": duration}


def create_nethunt_app(state: NetHuntState | None = None) -> FastAPI:
    """The simulated NetHunt API; `app.state.sim` is the `NetHuntState`."""
    state = state or NetHuntState()
    app = FastAPI(title="NetHunt simulator")
    app.state.sim = state

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Any) -> Any:
        if not _authorized(state, request.headers.get("authorization")):
            return _error(401, "Invalid credentials")
        return await call_next(request)

    def folder_or_404(folder_id: str) -> JSONResponse | None:
        return None if folder_id in state.folders else _error(404, f"Folder {folder_id} not found")

    @app.get(f"{BASE}/triggers/auth-test")
    async def auth_test() -> list[dict[str, Any]]:
        return [{"user": {"emailAddress": state.email, "personalName": "Simulated User"}}]

    @app.get(f"{BASE}/triggers/readable-folder")
    @app.get(f"{BASE}/triggers/writable-folder")
    async def folders() -> list[dict[str, str]]:
        return [{"id": fid, "name": name} for fid, name in state.folders.items()]

    def polled(folder_id: str, request: Request, items: list[dict[str, Any]], keys: tuple[str, ...]) -> Any:
        if missing := folder_or_404(folder_id):
            return missing
        raw_since, raw_limit = request.query_params.get("since"), request.query_params.get("limit") or "100"
        since = parse_time(raw_since) if raw_since else None
        if raw_since and since is None:
            return _error(400, "since must be an ISO-8601 date-time")
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            return _error(400, "limit must be a positive integer")
        found = state.feed(items, folder_id, since, int(raw_limit))
        return [{key: item.get(key) for key in keys} for item in found]

    @app.get(f"{BASE}/triggers/new-comment/{{folder_id}}")
    async def new_comments(folder_id: str, request: Request) -> Any:
        return polled(folder_id, request, state.comments, COMMENT_KEYS)

    @app.get(f"{BASE}/triggers/new-call-log/{{folder_id}}")
    async def new_call_logs(folder_id: str, request: Request) -> Any:
        return polled(folder_id, request, state.call_logs, CALL_LOG_KEYS)

    @app.get(f"{BASE}/searches/find-record/{{folder_id}}")
    async def find_record(folder_id: str, request: Request) -> Any:
        if missing := folder_or_404(folder_id):
            return missing
        params = request.query_params
        limit = int(params.get("limit") or 1)
        if record_id := params.get("recordId"):
            record = state.records.get(record_id)
            found = [record] if record and record.folder_id == folder_id else []
        elif query := params.get("query"):
            found = state.search(folder_id, query)
        else:
            return _error(400, "Either recordId or query is required")
        return [r.view() for r in found[:limit]]

    @app.post(f"{BASE}/actions/create-record/{{folder_id}}")
    async def create_record(folder_id: str, request: Request) -> Any:
        if missing := folder_or_404(folder_id):
            return missing
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return _error(400, "fields must be an object")
        return state.records[state.add_record(folder_id, body["fields"])].view()

    @app.post(f"{BASE}/actions/update-record/{{record_id}}")
    async def update_record(record_id: str, request: Request) -> Any:
        record = state.records.get(record_id)
        if record is None:
            return _error(404, f"Record {record_id} not found")
        body = await _json(request)
        actions = body.get("fieldActions") if isinstance(body, dict) else None
        if not isinstance(actions, dict):
            return _error(400, "fieldActions must be an object")
        default_overwrite = request.query_params.get("overwrite", "false").lower() == "true"
        for name, action in actions.items():
            spec = action if isinstance(action, dict) else {"add": action}
            apply_action(record.fields, name, spec, default_overwrite)
        record.updated_at = state.now()
        return record.view()

    @app.post(f"{BASE}/actions/create-comment/{{record_id}}")
    async def create_comment(record_id: str, request: Request) -> Any:
        if record_id not in state.records:
            return _error(404, f"Record {record_id} not found")
        body = await _json(request)
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return _error(400, "text is required")
        comment = {"commentId": f"c{len(state.comments) + 1}", "recordId": record_id, "text": body["text"]}
        state.comments.append({**comment, "createdAt": state.now()})
        return state.comments[-1]

    @app.post(f"{BASE}/actions/create-call-log/{{record_id}}")
    async def create_call_log(record_id: str, request: Request) -> Any:
        if record_id not in state.records:
            return _error(404, f"Record {record_id} not found")
        now = state.now()
        fields = _call_log_fields(await _json(request), now)
        if isinstance(fields, str):
            return _error(400, fields)
        log = {
            "callLogId": f"cl{len(state.call_logs) + 1}",
            "recordId": record_id,
            **fields,
            "createdAt": now,
        }
        state.call_logs.append(log)
        return dict(log)

    app.add_middleware(RecordingMiddleware, state=state)
    return app
