"""`happ originate <integration> leads.csv`: a batch of calls from a CSV file, watched to the end.

The file has a `phone_number` column; every other column goes into the call's metadata. A row
that cannot be called (no number, not a valid number, more cells than the header) is reported
with its line number and skipped. The calls start straight through PostgreSQL and Temporal,
like `happ call`; then their statuses are read from the integration's calls table until every
call has ended. Ctrl-C stops the watching (or the starting) only: the calls started go on.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from happ_integ.cli.common import (
    CliError,
    counts_line,
    emit_json,
    load_integration,
    load_settings,
    plural,
)
from happ_integ.cli.direct import direct, require_calls_table

if TYPE_CHECKING:
    from happ_integ.ops import Resources

PHONE_COLUMN = "phone_number"
DELIMITERS = (",", ";", "\t")
START_CONCURRENCY = 16
FINAL = frozenset({"completed", "exhausted", "failed", "cancelled"})
# The counters shown, each with the statuses it counts.
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("scheduled", frozenset({"scheduled"})),
    ("queued", frozenset({"queued"})),
    ("dialing", frozenset({"dialing"})),
    ("in progress", frozenset({"in_progress", "waiting_postcall", "analyzing"})),
    ("completed", frozenset({"completed"})),
    ("exhausted", frozenset({"exhausted"})),
    ("failed", frozenset({"failed"})),
    ("cancelled", frozenset({"cancelled"})),
)


@dataclass
class Lead:
    line: int
    phone: str
    metadata: dict[str, str]


@dataclass
class Skipped:
    line: int
    error: str


@dataclass
class Started:
    line: int
    call_id: str
    created: bool
    phone_masked: str


@dataclass
class Batch:
    leads: list[Lead] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    started: list[Started] = field(default_factory=list)
    not_started: list[int] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None  # "starting" or "watching"

    def call_ids(self) -> list[str]:
        return list(dict.fromkeys(s.call_id for s in self.started))

    def ended(self) -> int:
        return sum(1 for cid in self.call_ids() if self.statuses.get(cid, "gone") in FINAL | {"gone"})


def read_leads(path: Path) -> Batch:
    """The rows of the file, with their line numbers; rows that cannot be read are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(
            f"{path} does not exist: pass the path of a CSV file with a phone_number column"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text: save it as CSV UTF-8") from None
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line:
        raise CliError(
            f"{path} is empty: it needs a header line with a phone_number column, then one row a call"
        )
    delimiter = ","
    header: list[str] = []
    for candidate in DELIMITERS:
        header = [h.strip() for h in next(csv.reader([first_line], delimiter=candidate))]
        if PHONE_COLUMN in header:
            delimiter = candidate
            break
    else:
        columns = [h.strip() for h in next(csv.reader([first_line]))]
        raise CliError(
            f"{path} has no {PHONE_COLUMN} column (its columns: {', '.join(columns)}): "
            f"name the column of numbers {PHONE_COLUMN}"
        )
    batch = Batch()
    index = header.index(PHONE_COLUMN)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            batch.skipped.append(Skipped(start, f"not CSV: {exc}"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            batch.skipped.append(
                Skipped(start, f"{len(row)} cells, but the header names {len(header)} columns")
            )
            continue
        phone = row[index].strip() if index < len(row) else ""
        if not phone:
            batch.skipped.append(Skipped(start, f"no {PHONE_COLUMN}"))
            continue
        metadata = {header[i]: row[i] for i in range(min(len(row), len(header))) if i != index and header[i]}
        batch.leads.append(Lead(start, phone, metadata))
    return batch


class Progress:
    """One line of counts: rewritten in place on a terminal, else printed again when it changes."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.live = bool(out is not None and out.isatty())
        self.last = ""

    def show(self, text: str, *, final: bool = False) -> None:
        if self.out is None:
            return
        if self.live:
            self.out.write("\r\x1b[2K" + text + ("\n" if final else ""))
        elif text != self.last:
            self.out.write(text + "\n")
        self.last = text
        self.out.flush()

    def counts(self, batch: Batch) -> None:
        total = len(batch.call_ids())
        ended = batch.ended()
        width = 20
        filled = round(width * ended / total) if total else width
        bar = f"[{'#' * filled}{'.' * (width - filled)}] " if self.live else "progress: "
        self.show(f"{bar}{ended}/{total} ended · {counts_line(group_counts(batch))}")

    def end(self) -> None:
        if self.out is not None and self.live and self.last:
            self.out.write("\n")
            self.out.flush()


def group_counts(batch: Batch) -> dict[str, int]:
    tally = Counter(batch.statuses.get(cid, "gone") for cid in batch.call_ids())
    return {label: sum(tally[s] for s in statuses) for label, statuses in GROUPS}


async def _poll(resources: Resources, integration: str, batch: Batch) -> None:
    from happ_integ.stores.schema import pg_errors

    store = resources.calls(integration)
    with pg_errors():
        rows = await resources.pool.fetch(
            f"SELECT call_id, status FROM {store.calls} WHERE call_id = ANY($1::text[])", batch.call_ids()
        )
    batch.statuses = {r["call_id"]: r["status"] for r in rows}


def cmd_originate(args: argparse.Namespace) -> int:
    from control.client import originate_call
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.phones import mask_phone, normalize_phone
    from happ_integ.errors import HappError, ValidationFailed

    if args.interval < 0.2:
        raise CliError("--interval must be at least 0.2 seconds")
    path = Path(args.file).expanduser()
    settings = load_settings()
    integration = load_integration(args.integration, need_call_flow=True)
    name = integration.name
    batch = read_leads(path)
    text_out: TextIO | None = None if args.json else sys.stdout
    progress = Progress(sys.stderr if args.json and sys.stderr.isatty() else text_out)

    def say(line: str) -> None:
        if text_out is not None:
            print(line, file=text_out, flush=True)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            async with direct(settings, {name: integration}) as (resources, client):
                assert client is not None
                await require_calls_table(resources, name)
                handling = await resources.config(name).get("call_handling", CallHandling) or CallHandling()
                valid: list[tuple[Lead, str]] = []
                for lead in batch.leads:
                    try:
                        valid.append((lead, normalize_phone(lead.phone, handling.default_region)))
                    except ValidationFailed as exc:
                        batch.skipped.append(Skipped(lead.line, exc.message))
                for skip in sorted(batch.skipped, key=lambda s: s.line):
                    say(f"line {skip.line}: skipped: {skip.error}")
                if not valid:
                    first = min(batch.skipped, key=lambda s: s.line, default=None)
                    raise CliError(
                        f"{path} has no row that can be called: "
                        + (
                            f"all {len(batch.skipped)} were skipped (line {first.line}: {first.error})"
                            if first
                            else f"add rows under the header, one {PHONE_COLUMN} each"
                        )
                    )
                say(f"starting {plural(len(valid), 'call')} of {name} from {path.name} …")
                gate = asyncio.Semaphore(START_CONCURRENCY)

                async def start(lead: Lead, phone: str) -> None:
                    async with gate:
                        if stop.is_set():
                            batch.not_started.append(lead.line)
                            return
                        try:
                            call_id, created = await originate_call(
                                resources, client, name, phone, lead.metadata, handling
                            )
                        except HappError as exc:
                            batch.skipped.append(Skipped(lead.line, exc.message))
                            say(f"line {lead.line}: not started: {exc.message}")
                            return
                        batch.started.append(Started(lead.line, call_id, created, mask_phone(phone)))

                await asyncio.gather(*(start(lead, phone) for lead, phone in valid))
                batch.started.sort(key=lambda s: s.line)
                existing = sum(1 for s in batch.started if not s.created)
                say(
                    f"started {plural(len(batch.started) - existing, 'call')}"
                    + (
                        f", {plural(existing, 'number')} already had a call in flight (watched too)"
                        if existing
                        else ""
                    )
                )
                if stop.is_set():
                    batch.interrupted = "starting"
                if not batch.started:
                    if batch.interrupted:
                        return
                    first = min(batch.skipped, key=lambda s: s.line)
                    raise CliError(f"no call could be started (line {first.line}: {first.error})")
                await _poll(resources, name, batch)
                if args.no_wait or batch.interrupted:
                    progress.counts(batch)
                    return
                while True:
                    progress.counts(batch)
                    if batch.ended() >= len(batch.call_ids()):
                        break
                    try:
                        await asyncio.wait_for(stop.wait(), args.interval)
                    except TimeoutError:
                        await _poll(resources, name, batch)
                        continue
                    batch.interrupted = "watching"
                    break
        finally:
            progress.end()
            loop.remove_signal_handler(signal.SIGINT)

    asyncio.run(run())
    total, ended = len(batch.call_ids()), batch.ended()
    if args.json:
        emit_json(_document(name, path, batch))
    elif not batch.interrupted and not args.no_wait:
        say(f"all {total} calls ended: {counts_line(_final_counts(batch))}")
    elif args.no_wait:
        say(f"{total - ended} of {total} calls still running: follow them with `happ calls {name}`")
    if batch.skipped and not args.json:
        lines = sorted(s.line for s in batch.skipped)
        where = f"line {lines[0]}" if len(lines) == 1 else f"lines {', '.join(map(str, lines))}"
        say(f"{plural(len(lines), 'row')} skipped ({where})")
    if batch.interrupted == "starting":
        raise CliError(
            f"stopped (Ctrl-C) after starting {len(batch.started)} calls: they go on on their own, "
            f"the other {len(batch.not_started)} rows were not started; follow them with `happ calls {name}`",
            code=130,
        )
    if batch.interrupted == "watching":
        raise CliError(
            f"stopped watching (Ctrl-C): {total - ended} of {total} calls are still running and go on on "
            f"their own; follow them with `happ calls {name}`",
            code=130,
        )
    return 0


def _final_counts(batch: Batch) -> dict[str, int]:
    counts = group_counts(batch)
    return {label: counts[label] for label in ("completed", "exhausted", "failed", "cancelled")}


def _document(name: str, path: Path, batch: Batch) -> dict[str, Any]:
    total = len(batch.call_ids())
    return {
        "integration": name,
        "file": str(path),
        "calls": [
            {
                "line": s.line,
                "call_id": s.call_id,
                "created": s.created,
                "phone_masked": s.phone_masked,
                "status": batch.statuses.get(s.call_id),
            }
            for s in batch.started
        ],
        "skipped": [{"line": s.line, "error": s.error} for s in sorted(batch.skipped, key=lambda s: s.line)],
        "not_started": sorted(batch.not_started),
        "counts": group_counts(batch),
        "total": total,
        "ended": batch.ended(),
        "all_ended": batch.ended() >= total,
        "interrupted": batch.interrupted is not None,
    }
