"""`happ call`, `happ calls`, `happ call-status`, `happ cancel`.

`call` starts a call straight through PostgreSQL and Temporal (`control.client.originate_call`,
with the integration's stored `call_handling`); the others ask the API's admin routes.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from happ_integ.cli.admin_api import AdminApi
from happ_integ.cli.common import (
    CliSettings,
    emit_json,
    load_integration,
    load_settings,
    parse_json_object,
    table,
    when,
)
from happ_integ.cli.direct import direct, require_calls_table

FINAL = ("completed", "exhausted", "failed", "cancelled")


def workflow_id(integration: str, call_id: str) -> str:
    from happ_integ.temporal import call_workflow_id

    return call_workflow_id(integration, call_id)


def cmd_call(args: argparse.Namespace) -> int:
    from control.client import originate_call
    from happ_integ.calls.phones import mask_phone, normalize_phone

    metadata = parse_json_object(args.metadata, "--metadata") if args.metadata else {}
    settings = load_settings()
    integration = load_integration(args.integration, need_call_flow=True)
    name = integration.name

    async def run() -> tuple[str, bool, str]:
        async with direct(settings, {name: integration}) as (resources, client):
            assert client is not None
            await require_calls_table(resources, name)
            handling = await resources.call_handling(name)
            phone = normalize_phone(args.phone, handling.default_region)
            call_id, created = await originate_call(resources, client, name, phone, metadata, handling)
            return call_id, created, phone

    call_id, created, phone = asyncio.run(run())
    wid = workflow_id(name, call_id)
    link = settings.workflow_link(wid)
    if args.json:
        emit_json(
            {
                "integration": name,
                "call_id": call_id,
                "created": created,
                "phone_masked": mask_phone(phone),
                "workflow_id": wid,
                "web_ui": link,
            }
        )
        return 0
    if created:
        print(f"call {call_id} started: {name} calls {mask_phone(phone)}")
    else:
        print(f"{mask_phone(phone)} already has a call in flight: {call_id} (nothing new was started)")
    print(f"  status   happ call-status {name} {call_id}")
    print(f"  Web UI   {link}")
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from happ_integ.calls.phones import mask_phone

    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        page = api.call(
            "GET",
            "/calls",
            params={"status": args.status, "limit": args.limit, "cursor": args.cursor},
            missing_route=_no_calls(args.integration),
        )
    if args.json:
        emit_json({"integration": args.integration, **page})
        return 0
    rows = [
        [
            c["call_id"],
            c["status"],
            c["attempt"],
            c.get("phone_masked") or mask_phone(c.get("phone", "")),
            when(c.get("updated_at")),
        ]
        for c in page["calls"]
    ]
    if not rows:
        print(f"no calls{f' with status {args.status}' if args.status else ''} in {args.integration}")
    else:
        print(table(rows, ["CALL ID", "STATUS", "ATTEMPT", "PHONE", "UPDATED"]))
    if page.get("next_cursor"):
        print(f"(more: happ calls {args.integration} --cursor {page['next_cursor']})")
    return 0


def _no_calls(integration: str) -> str:
    return f"integration {integration!r} has no call flow, so it has no calls"


def _state_document(settings: CliSettings, integration: str, state: dict[str, Any]) -> dict[str, Any]:
    wid = workflow_id(integration, state["call_id"])
    return {**state, "workflow_id": wid, "web_ui": settings.workflow_link(wid)}


def cmd_call_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        state = api.call(
            "GET",
            f"/calls/{args.call_id}",
            missing_route=_no_calls(args.integration),
            not_found_hint=f"list the calls with `happ calls {args.integration}`",
        )
    document = _state_document(settings, args.integration, state)
    if args.json:
        emit_json(document)
        return 0
    print(describe_state(document))
    return 0


def describe_state(state: dict[str, Any]) -> str:
    lines = [f"call {state['call_id']} ({state.get('integration', '')})"]

    def field(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"  {label:<13}{value}")

    field("status", state.get("status"))
    field("reason", state.get("reason"))
    field("attempt", state.get("attempt"))
    field("phone", state.get("phone_masked"))
    field("next attempt", when(state.get("next_attempt_at")))
    field("record", state.get("record_id"))
    variables = state.get("variables") or {}
    field("variables", ", ".join(f"{k}={v}" for k, v in variables.items()))
    analysis = state.get("analysis") or {}
    if analysis:
        field("outcome", analysis.get("outcome"))
        field("summary", analysis.get("summary"))
    if state.get("cancel_requested") and state.get("status") not in FINAL:
        field("cancel", "requested: no further attempt")
    field("callback", state.get("callback_call_id"))
    field("workflow", state.get("workflow_id"))
    field("Web UI", state.get("web_ui"))
    attempts = state.get("attempts") or []
    if attempts:
        lines.append("attempts:")
        rows = [
            [
                a.get("number"),
                when(a.get("started_at")),
                when(a.get("answered_at")),
                when(a.get("ended_at")),
                "" if a.get("duration_seconds") is None else f"{a['duration_seconds']:g}s",
                a.get("outcome") or "",
                a.get("error") or "",
            ]
            for a in attempts
        ]
        body = table(rows, ["#", "STARTED", "ANSWERED", "ENDED", "DURATION", "OUTCOME", "ERROR"])
        lines.extend(f"  {line}" for line in body.splitlines())
    return "\n".join(lines)


def cmd_cancel(args: argparse.Namespace) -> int:
    import time

    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        missing = _no_calls(args.integration)
        hint = f"list the calls with `happ calls {args.integration}`"
        state = api.call("POST", f"/calls/{args.call_id}/cancel", missing_route=missing, not_found_hint=hint)
        # The workflow takes the request at once and ends a waiting call right after: wait for that.
        deadline = time.monotonic() + args.wait
        while state.get("status") not in FINAL and time.monotonic() < deadline:
            time.sleep(0.25)
            state = api.call("GET", f"/calls/{args.call_id}", missing_route=missing, not_found_hint=hint)
    document = _state_document(settings, args.integration, state)
    if args.json:
        emit_json(document)
        return 0
    status = document.get("status")
    if status == "cancelled":
        print(f"call {args.call_id} is cancelled: no further attempt")
    else:
        print(
            f"call {args.call_id} will not be tried again; it is {status} now: a call on the line "
            "finishes and its post-call still runs"
        )
    print(f"  Web UI   {document['web_ui']}")
    return 0
