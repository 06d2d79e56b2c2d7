"""`happ campaign …`: a campaign of calls from a CSV file, through the gateway's campaign routes.

    happ campaign create sofa leads.csv --name "Webinar 12 Dec" --max-concurrency 5 --watch
    happ campaign append sofa cmp_… more.csv
    happ campaign list sofa [--status running]
    happ campaign status|watch|pause|resume|cancel sofa cmp_…
    happ campaign retry sofa cmp_… [--status failed …] [--outcome no_conversation …]
    happ campaign report sofa cmp_… [-o report.csv]

The arguments: happ_integ.cli.campaign_args. The file's columns and the rows it cannot send:
happ_integ.cli.leads. `--watch` follows the
campaign until it is finished or cancelled (happ_integ.cli.campaign_watch); Ctrl-C stops the
watching only, never the campaign.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from happ_integ.campaigns.models import CampaignStatus
from happ_integ.cli.admin_api import AdminApi
from happ_integ.cli.campaign_watch import (
    campaign_state,
    describe,
    ended_line,
    final_count,
    watch,
)
from happ_integ.cli.common import (
    CliError,
    CliSettings,
    emit_json,
    load_settings,
    plural,
    table,
    when,
)
from happ_integ.cli.leads import (
    PHONE_COLUMN,
    Leads,
    Skipped,
    read_leads,
    rejected_rows,
)

CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CAMPAIGN_STATUSES = tuple(s.value for s in CampaignStatus)


# The API -----------------------------------------------------------------------------------------


class CampaignApi(AdminApi):
    """The admin API's campaign routes of one integration."""

    def __init__(self, settings: CliSettings, integration: str, api_url: str | None = None) -> None:
        super().__init__(settings, integration, api_url)
        self.missing = (
            f"the API at {self.base} has no campaign routes for {integration!r}: the integration has no "
            "call flow, or the API is older than campaigns (update it and restart `happ api`)"
        )
        self.hint = f"list the campaigns with `happ campaign list {integration}`"

    def __enter__(self) -> CampaignApi:
        return self

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        with self._headers(headers or {}):
            return self.call(
                method,
                f"/campaigns{path}",
                json=json,
                params=params,
                missing_route=self.missing,
                not_found_hint=self.hint,
            )

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.send("GET", f"/{campaign_id}")
        return view

    @contextmanager
    def _headers(self, headers: Mapping[str, str]) -> Iterator[None]:
        """`headers` on the requests made meanwhile (AdminApi.call sends only the token)."""
        self._http.headers.update(headers)
        try:
            yield
        finally:
            for name in headers:
                self._http.headers.pop(name, None)

    def download(self, path: str, write: Callable[[bytes], object]) -> int:
        """Stream `GET /{integration}/campaigns{path}` to `write`; the bytes written."""
        url = f"/{self.integration}/campaigns{path}"
        written = 0
        try:
            with self._http.stream("GET", url, headers={"Authorization": f"Bearer {self._token}"}) as answer:
                if not answer.is_success:
                    answer.read()
                    try:
                        body = answer.json()
                    except ValueError:
                        body = None
                    message = body.get("error") if isinstance(body, dict) else None
                    raise CliError(
                        f"the API refused GET {url} ({answer.status_code}): "
                        f"{message or answer.reason_phrase or 'no message'}"
                    )
                for chunk in answer.iter_bytes():
                    write(chunk)
                    written += len(chunk)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return written


def _api(args: argparse.Namespace) -> CampaignApi:
    return CampaignApi(load_settings(), args.integration, args.api_url)


# The commands ------------------------------------------------------------------------------------


def _say_rejected(rejected: list[Skipped]) -> None:
    for row in rejected:
        where = f"line {row.line}" if row.line > 0 else f"recipient #{(row.index or 0) + 1}"
        print(f"  {where}{f', id {row.id}' if row.id else ''}: {row.error}")


def _rejected_document(rejected: list[Skipped]) -> list[dict[str, Any]]:
    return [{"line": r.line, "index": r.index, "id": r.id, "error": r.error} for r in rejected]


def _no_recipient(exc: CliError) -> CliError:
    if "no recipient was accepted" not in exc.message:
        return exc
    return CliError(
        f"{exc.message}: check the {PHONE_COLUMN} column (E.164, or local to the integration's "
        "call_handling.default_region) and the id column (1 to 128 letters, digits or _.:@+-, each once)"
    )


def _moment(text: str | None, option: str) -> str | None:
    """An ISO date-time as the API takes it; without a zone it is this machine's local time."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not an ISO date-time: e.g. 2025-12-12T10:00+02:00") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.isoformat()


def cmd_create(args: argparse.Namespace) -> int:
    path = Path(args.file).expanduser()
    leads = read_leads(path)
    body: dict[str, Any] = {"name": args.name, "recipients": leads.recipients()}
    start_at, end_at = _moment(args.start_at, "--start-at"), _moment(args.end_at, "--end-at")
    optional = {
        "start_at": start_at,
        "end_at": end_at,
        "max_concurrency": args.max_concurrency,
        "max_attempts": args.max_attempts,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if getattr(args, "watch", False) and args.interval < 0.2:
        raise CliError("--interval must be at least 0.2 seconds")
    if getattr(args, "dry_run", False):
        return _dry_run(args, body, leads)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    with _api(args) as api:
        try:
            answer = api.send("POST", "", json=body, headers=headers)
        except CliError as exc:
            raise _no_recipient(exc) from None
        campaign_id = str(answer["campaign_id"])
        rejected = rejected_rows(leads, answer)
        name = args.integration
        if not args.json:
            print(
                f"campaign {campaign_id} created: {args.name!r} on {name}, "
                f"{plural(int(answer['accepted']), 'recipient')} accepted, {len(rejected)} rejected"
            )
            _say_rejected(rejected)
        view = watch(api, campaign_id, args) if args.watch else None
    if args.json:
        document: dict[str, Any] = {
            "integration": name,
            "file": str(path),
            "name": args.name,
            "campaign_id": campaign_id,
            "accepted": answer["accepted"],
            "rejected": _rejected_document(rejected),
        }
        if view is not None:
            document["campaign"] = view
        emit_json(document)
    elif view is not None:
        print(ended_line(view))
        print(f"  report   happ campaign report {name} {campaign_id} -o report.csv")
    else:
        print(f"  status   happ campaign status {name} {campaign_id}")
        print(f"  watch    happ campaign watch {name} {campaign_id}")
    return 0


def _dry_run(args: argparse.Namespace, body: dict[str, Any], leads: Leads) -> int:
    """`create --dry-run`: the gateway's preflight of the same body; nothing stored or dialled."""
    with _api(args) as api:
        answer = api.send("POST", "/preflight", json=body)
    if args.json:
        emit_json({"integration": args.integration, "file": str(args.file), "preflight": answer})
        return 0
    counts = answer["counts"]
    print(
        f"dry run of {args.name!r} on {args.integration}: {counts['valid']} of {counts['total']} "
        f"recipients callable, {counts['invalid']} invalid, {counts['suppressed']} on the do-not-call "
        f"list, {counts.get('capped', 0)} held back by a contact cap, "
        f"{counts['ambiguous_timezone']} in several time zones, {counts['missing_variables']} "
        "missing variables; nothing was stored or dialled"
    )
    for row in answer["recipients"]:
        problems = [
            row["error"] or "",
            "on the do-not-call list" if row["suppressed"] else "",
            f"capped: {row.get('capped_reason') or 'a contact cap'}" if row.get("capped") else "",
            f"{len(row['timezones'])} time zones" if row["ambiguous_timezone"] else "",
            f"missing {', '.join(row['missing_variables'])}" if row["missing_variables"] else "",
        ]
        if any(problems):
            line = leads.rows[row["index"]].line if row["index"] < len(leads.rows) else row["index"]
            print(f"  line {line}: {'; '.join(p for p in problems if p)}")
    if answer.get("projected_end_at"):
        print(f"  projected end  {answer['projected_end_at']}")
    return 0


def cmd_append(args: argparse.Namespace) -> int:
    path = Path(args.file).expanduser()
    leads = read_leads(path)
    with _api(args) as api:
        answer = api.send("POST", f"/{args.campaign_id}/recipients", json={"recipients": leads.recipients()})
    rejected = rejected_rows(leads, answer)
    if args.json:
        emit_json(
            {
                "integration": args.integration,
                "file": str(path),
                "campaign_id": args.campaign_id,
                "accepted": answer["accepted"],
                "rejected": _rejected_document(rejected),
            }
        )
        return 0
    print(
        f"campaign {args.campaign_id}: {plural(int(answer['accepted']), 'recipient')} added, "
        f"{len(rejected)} rejected"
    )
    _say_rejected(rejected)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _api(args) as api:
        page = api.send("GET", "", params={"status": args.status, "limit": args.limit, "cursor": args.cursor})
    if args.json:
        emit_json({"integration": args.integration, **page})
        return 0
    rows = [
        [
            c["campaign_id"],
            campaign_state(c),
            f"{final_count(c)}/{int(c.get('total') or 0)}",
            when(c.get("created_at")),
            c.get("name", ""),
        ]
        for c in page["campaigns"]
    ]
    if not rows:
        print(f"no campaigns{f' with status {args.status}' if args.status else ''} in {args.integration}")
    else:
        print(table(rows, ["CAMPAIGN ID", "STATUS", "FINAL", "CREATED", "NAME"]))
    if page.get("next_cursor"):
        print(f"(more: happ campaign list {args.integration} --cursor {page['next_cursor']})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _api(args) as api:
        view = api.campaign(args.campaign_id)
    if args.json:
        emit_json({"integration": args.integration, **view})
        return 0
    print(describe(view, args.integration))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    with _api(args) as api:
        view = watch(api, args.campaign_id, args)
    if args.json:
        emit_json({"integration": args.integration, **view})
    else:
        print(ended_line(view))
    return 0


def _change(args: argparse.Namespace, action: str) -> dict[str, Any]:
    with _api(args) as api:
        answer: dict[str, Any] = api.send("POST", f"/{args.campaign_id}/{action}")
    if args.json:
        emit_json({"integration": args.integration, **answer})
    return answer


def cmd_pause(args: argparse.Namespace) -> int:
    answer = _change(args, "pause")
    if not args.json:
        # A campaign paused before its start_at answers `paused` too: it dials nothing until resumed.
        print(
            f"campaign {args.campaign_id} is {answer['status']}: nothing new is dialled; calls on the "
            "line finish"
        )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    answer = _change(args, "resume")
    if not args.json:
        if answer["status"] == CampaignStatus.SCHEDULED:
            print(f"campaign {args.campaign_id} is resumed: it starts dialling at its start_at")
        else:
            print(f"campaign {args.campaign_id} is {answer['status']}: dialling goes on")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    answer = _change(args, "cancel")
    if not args.json:
        if answer["status"] == CampaignStatus.CANCELLED:
            print(f"campaign {args.campaign_id} is cancelled: no further call")
        else:
            print(
                f"campaign {args.campaign_id} is being cancelled: nothing new is dialled and the calls not "
                "yet dialled end cancelled; calls on the line finish, then it shows cancelled"
            )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    chosen = {"statuses": args.statuses, "outcomes": args.outcomes}
    body = {k: v for k, v in chosen.items() if v} or None
    with _api(args) as api:
        answer: dict[str, Any] = api.send("POST", f"/{args.campaign_id}/retry", json=body)
    if args.json:
        emit_json({"integration": args.integration, **answer})
        return 0
    retried = int(answer.get("retried") or 0)
    if not retried:
        what = "the filter" if body else "the default filter (exhausted, failed, outcome no_conversation)"
        print(f"campaign {args.campaign_id}: no recipient matches {what}; nothing to retry")
        return 0
    print(
        f"campaign {args.campaign_id}: {plural(retried, 'recipient')} get a new call "
        f"(the campaign is {answer.get('status')})"
    )
    print(f"  watch    happ campaign watch {args.integration} {args.campaign_id}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = "/" + args.campaign_id
    with _api(args) as api:
        view = api.campaign(args.campaign_id)  # a missing campaign or route named as every command names it
        if args.output in (None, "-"):
            sys.stdout.flush()
            api.download(f"{path}/report.csv", sys.stdout.buffer.write)
            sys.stdout.buffer.flush()
            return 0
        target = Path(args.output).expanduser()
        if target.is_dir():
            raise CliError(f"{target} is a folder: pass a file name, e.g. {target / 'report.csv'}")
        try:
            handle = tempfile.NamedTemporaryFile(
                "wb", dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
            )
        except OSError as exc:
            raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
        try:
            with handle:
                size = api.download(f"{path}/report.csv", handle.write)
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    rows = max(0, sum(1 for _ in csv.reader(target.open(encoding="utf-8", newline=""))) - 1)
    if args.json:
        emit_json(
            {
                "integration": args.integration,
                "campaign_id": args.campaign_id,
                "file": str(target),
                "rows": rows,
                "bytes": size,
            }
        )
    else:
        print(
            f"report of campaign {args.campaign_id} ({view.get('status')}) written to {target}: "
            f"{plural(rows, 'recipient')}"
        )
    return 0
