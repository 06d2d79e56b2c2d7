"""`happ dnc add|remove|list|import`: the do-not-call list every integration shares, through the
gateway's `/suppressions` routes with the admin token (as the other API commands reach the API).

    happ dnc add +380994829573 --reason "asked not to be called" [--integration sofa]
    happ dnc remove +380994829573 [--integration sofa] [--reason "added by mistake"]
    happ dnc list [--phone +380994829573] [--integration sofa]
    happ dnc import numbers.csv [--integration sofa] [--reason "complaint list"]

`import` reads the file here (a phone_number column, optional integration and reason columns),
sends it in parts small enough for the API's body limit, and names each rejected row by its line.
Numbers are shown masked.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from happ_integ.cli.admin_api import TIMEOUT_SECONDS, AdminApi
from happ_integ.cli.common import CliError, CliSettings, emit_json, load_settings, plural, table, when

PHONE_COLUMN, INTEGRATION_COLUMN, REASON_COLUMN = "phone_number", "integration", "reason"
COLUMNS = (PHONE_COLUMN, INTEGRATION_COLUMN, REASON_COLUMN)
# One request carries at most this many rows and about this many bytes (the API's default body
# limit, HAPP_MAX_BODY_BYTES, is 1 MiB).
PART_ROWS = 5000
PART_BYTES = 512 * 1024
SHOWN_REJECTED = 20


class _Client(httpx.Client):
    """An httpx client that sends `next_body` (bytes, content type) with its next request: AdminApi
    sends JSON only, and an import is a CSV body."""

    next_body: tuple[bytes, str] | None = None

    def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        if self.next_body is not None:
            content, content_type = self.next_body
            self.next_body = None
            kwargs["json"] = None
            kwargs["content"] = content
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Type": content_type}
        return super().request(method, url, **kwargs)


class DncApi(AdminApi):
    """The gateway's `/suppressions` routes. They are at its root, not under an integration:
    `AdminApi.call` asks `/{integration}{path}`, so the "integration" here is `suppressions`."""

    def __init__(
        self, settings: CliSettings, api_url: str | None = None, integration: str | None = None
    ) -> None:
        self.base = settings.api_base(api_url)
        self.integration = "suppressions"
        if settings.admin_token is None:
            raise CliError(
                "HAPP_ADMIN_TOKEN is not set: export the admin token the API runs with "
                "(`happ dev` prints it and keeps it in .happ/dev-secrets.json)"
            )
        self._token = settings.admin_token.get_secret_value()
        self._http = _Client(base_url=self.base, timeout=TIMEOUT_SECONDS, follow_redirects=False)
        try:
            served = self._served()
        except CliError:
            self._http.close()
            raise
        if integration is not None and integration not in served:
            self._http.close()
            raise CliError(
                f"the API at {self.base} serves no integration {integration!r}: "
                f"it serves {', '.join(served) or 'none'}"
            )
        self.missing = (
            f"the API at {self.base} has no do-not-call routes (/suppressions): it is older than the "
            "do-not-call list; update it and restart `happ api`"
        )

    def __enter__(self) -> DncApi:
        return self

    def send(self, method: str, path: str = "", *, not_found_hint: str = "", **kw: Any) -> Any:
        return self.call(method, path, missing_route=self.missing, not_found_hint=not_found_hint, **kw)

    def upload(self, content: bytes, params: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(self._http, _Client)
        self._http.next_body = (content, "text/csv; charset=utf-8")
        try:
            answer: dict[str, Any] = self.send("POST", "/import", params=params)
        finally:
            self._http.next_body = None
        return answer


def _api(args: argparse.Namespace) -> DncApi:
    return DncApi(load_settings(), args.api_url, args.integration)


def scope_of(integration: str | None) -> str:
    return "every integration" if integration is None else f"integration {integration}"


# add, remove, list -------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace) -> int:
    body = {
        "phone_number": args.phone,
        "integration": args.integration,
        "reason": args.reason,
        "source": args.source,
        "evidence": args.evidence,
    }
    with _api(args) as api:
        entry = api.send("POST", json={k: v for k, v in body.items() if v is not None})
    if args.json:
        emit_json(entry)
        return 0
    scope = scope_of(entry.get("integration"))
    if entry.get("created"):
        print(f"{entry['phone_masked']} is on the do-not-call list of {scope} now ({entry.get('reason')})")
    else:
        print(
            f"{entry['phone_masked']} was already on the do-not-call list of {scope} since "
            f"{when(entry.get('created_at'))} ({entry.get('reason') or 'no reason given'}): nothing changed"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if "/" in args.phone or not args.phone.strip():
        raise CliError("that is not a phone number: give it in E.164 (+380…) or as dialled locally")
    params = {"integration": args.integration, "reason": args.reason}
    hint = "`happ dnc list --phone <number>` shows the entries the number has"
    with _api(args) as api:
        answer = api.send("DELETE", f"/{_path_phone(args.phone)}", params=params, not_found_hint=hint)
    if args.json:
        emit_json(answer)
        return 0
    print(f"{answer['phone_masked']} is off the do-not-call list of {scope_of(answer.get('integration'))}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    params = {
        "phone_number": args.phone,
        "integration": args.integration,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    with _api(args) as api:
        page = api.send("GET", params=params)
    if args.json:
        emit_json(page)
        return 0
    rows = [
        [
            e["phone_masked"],
            e.get("integration") or "(all)",
            e.get("source") or "",
            _short(e.get("reason") or ""),
            when(e.get("created_at")),
        ]
        for e in page["suppressions"]
    ]
    if rows:
        print(table(rows, ["PHONE", "INTEGRATION", "SOURCE", "REASON", "ADDED"]))
    else:
        print(
            "no entries" + (" match" if args.phone or args.integration else ": the do-not-call list is empty")
        )
    if page.get("next_cursor"):
        again = ["happ dnc list"]
        again += [f"--phone {args.phone}"] if args.phone else []
        again += [f"--integration {args.integration}"] if args.integration else []
        print(f"(more: {' '.join(again)} --cursor {page['next_cursor']})")
    return 0


def _path_phone(phone: str) -> str:
    """The number as a path segment: `+` stays, anything else that is not a digit is encoded."""
    from urllib.parse import quote

    return quote(phone.strip(), safe="+")


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# import ------------------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    cells: tuple[str, str, str]  # phone_number, integration, reason


@dataclass
class NumbersFile:
    rows: list[Row] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, error)
    ignored: list[str] = field(default_factory=list)


def parse_numbers(text: str, source: str = "the file") -> NumbersFile:
    """The rows of a do-not-call CSV (comma, semicolon or tab separated, a BOM allowed), each with
    the line it starts on; rows without a number, or with cells past the header, are rejected here."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CliError(f"{source} is empty: it needs a {PHONE_COLUMN} column")
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=max(",;\t", key=first.count))
    parsed = NumbersFile()
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        for name in COLUMNS:
            if header.count(name) > 1:
                raise CliError(f"{source} names the column {name!r} twice")
        if PHONE_COLUMN not in header:
            raise CliError(
                f"{source} has no {PHONE_COLUMN} column (its columns: {', '.join(header[:10])}): "
                f"the first line names the columns, e.g. {','.join(COLUMNS)}"
            )
        where = [header.index(name) if name in header else None for name in COLUMNS]
        parsed.ignored = [h for h in header if h not in COLUMNS]
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            phone, integration, reason = (
                cells[at].strip() if at is not None and at < len(cells) else "" for at in where
            )
            if not phone:
                parsed.rejected.append((line, f"no {PHONE_COLUMN}"))
            elif any(cell.strip() for cell in cells[len(header) :]):
                parsed.rejected.append(
                    (line, f"{len(cells)} cells, but the header names {len(header)} columns")
                )
            else:
                parsed.rows.append(Row(line, (phone, integration, reason)))
    except csv.Error as exc:
        raise CliError(f"{source} cannot be read as CSV at line {reader.line_num}: {exc}") from None
    return parsed


def parts(rows: list[Row]) -> list[tuple[list[Row], bytes]]:
    """The rows as CSV bodies of at most PART_ROWS rows and about PART_BYTES each."""
    done: list[tuple[list[Row], bytes]] = []
    buffer, writer, chunk = _new_part()
    for row in rows:
        writer.writerow(row.cells)
        chunk.append(row)
        if len(chunk) >= PART_ROWS or buffer.tell() >= PART_BYTES:
            done.append((chunk, buffer.getvalue().encode()))
            buffer, writer, chunk = _new_part()
    if chunk:
        done.append((chunk, buffer.getvalue().encode()))
    return done


def _new_part() -> tuple[io.StringIO, Any, list[Row]]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    return buffer, writer, []


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"no file {args.file}") from None
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file} is not UTF-8 text: save it as UTF-8 CSV") from None
    numbers = parse_numbers(text, args.file)
    rejected = list(numbers.rejected)
    added = skipped = 0
    params = {"integration": args.integration, "reason": args.reason}
    with _api(args) as api:
        for rows, body in parts(numbers.rows):
            answer = api.upload(body, params)
            added += int(answer["added"])
            skipped += int(answer["skipped"])
            for item in answer.get("rejected") or []:
                index = int(item["index"])
                line = rows[index].line if 0 <= index < len(rows) else -1
                rejected.append((line, str(item.get("error") or "rejected")))
    rejected.sort()
    total = len(numbers.rows) + len(numbers.rejected)
    if args.json:
        emit_json(
            {
                "rows": total,
                "added": added,
                "skipped": skipped,
                "rejected": [{"line": line, "error": error} for line, error in rejected],
                "ignored_columns": numbers.ignored,
            }
        )
        return 0
    print(
        f"{plural(added, 'number')} added to the do-not-call list, {skipped} already on it, "
        f"{len(rejected)} rejected (of {plural(total, 'row')})"
    )
    for line, error in rejected[:SHOWN_REJECTED]:
        print(f"  line {line}: {error}")
    if len(rejected) > SHOWN_REJECTED:
        print(f"  … and {len(rejected) - SHOWN_REJECTED} more (--json lists them all)")
    if numbers.ignored:
        print(f"columns ignored: {', '.join(numbers.ignored)} (only {', '.join(COLUMNS)} are read)")
    return 0


# The parser --------------------------------------------------------------------------------------


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: use 1 to 500") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError(f"{value} is out of range: use 1 to 500")
    return value


def register(commands: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """`happ dnc <action>`, each an API command built with the CLI's `command` helper (as
    `campaign.register`)."""
    group = commands.add_parser(
        "dnc",
        help="add, remove, list or import numbers on the do-not-call list (API)",
        description="The do-not-call list every integration shares: a number on it is not called, by "
        "every integration or only by the one its entry names.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="<action>")

    def action(name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any) -> Any:
        return command(name, func, help, parent=actions, label=f"dnc {name}", api=True, **kw)

    def scope(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument("--integration", metavar="NAME", help=what)

    add = action(
        "add",
        cmd_add,
        "put a number on the do-not-call list",
        description="Put a number on the do-not-call list of every integration, or of the one --integration "
        "names. A number already there (with the same scope) is left as it was.",
        epilog='example: happ dnc add +380994829573 --reason "asked not to be called" --integration sofa',
    )
    add.add_argument(
        "phone", help="E.164, or local to the integration's default region (UA for every integration)"
    )
    add.add_argument("--reason", required=True, help="why it may not be called")
    scope(add, "only this integration may not call it (default: none may)")
    add.add_argument("--source", default="manual", help="who put it there (default: manual)")
    add.add_argument("--evidence", metavar="TEXT", help="e.g. the call id where the person asked")

    remove = action(
        "remove",
        cmd_remove,
        "take a number off the do-not-call list",
        description="Take the number's entry off the do-not-call list: the one of every integration, or the "
        "one --integration names (an entry of the other kind stays). The removal is logged.",
    )
    remove.add_argument("phone")
    scope(remove, "the entry of this integration (default: the one of every integration)")
    remove.add_argument("--reason", help="why it is removed, for the log")

    listing = action("list", cmd_list, "list the do-not-call list, newest first (numbers masked)")
    listing.add_argument("--phone", help="only this number's entries")
    scope(listing, "only the entries that apply to this integration (its own and those of every integration)")
    listing.add_argument("--limit", type=_limit, default=50, help="at most this many (1-500, default 50)")
    listing.add_argument("--cursor", help="the next page, as the previous page named it")

    importing = action(
        "import",
        cmd_import,
        "add the numbers of a CSV file",
        description=f"Add the numbers of a CSV file: a {PHONE_COLUMN} column and optional {INTEGRATION_COLUMN} "
        f"(empty: every integration) and {REASON_COLUMN} columns; other columns are ignored. Prints how "
        "many were added, how many were on the list already, and each rejected row with its line number.",
        epilog="example:\n  printf 'phone_number,integration,reason\\n+380994829573,,asked\\n' > dnc.csv\n"
        "  happ dnc import dnc.csv",
    )
    importing.add_argument("file", help="the CSV file")
    scope(importing, "for rows whose integration cell is empty (default: every integration)")
    importing.add_argument("--reason", help="for rows whose reason cell is empty")
