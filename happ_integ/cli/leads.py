"""Reading a leads CSV, for `happ campaign create|append` and `happ originate`.

    leads = read_leads(Path("leads.csv"))          # a file it cannot use: a CliError naming the fix
    answer = api.send("POST", "", json={"name": "Webinar", "recipients": leads.recipients()})
    for row in rejected_rows(leads, answer):       # not sent, or rejected by the API, by line
        print(row.line, row.id, row.error)

The file (UTF-8; comma, semicolon or tab separated) has a `phone_number` column, an optional `id`
column, `var.NAME` columns (the agent's variable NAME) and any other columns (the recipient's
metadata); empty cells are left out. A row the API cannot take (no number, more cells than the
header) is reported with its line number and not sent; the rows the API rejects are reported
with theirs. One request takes at most 10,000 rows: a longer file is refused before anything
is sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from happ_integ.campaigns.models import MAX_RECIPIENTS_PER_REQUEST
from happ_integ.cli.common import CliError

PHONE_COLUMN = "phone_number"
ID_COLUMN = "id"
VARIABLE_PREFIX = "var."
DELIMITERS = (",", ";", "\t")
MAX_ROWS = MAX_RECIPIENTS_PER_REQUEST
# What RecipientIn takes; past these the API refuses the whole request, so such a row is not sent.
MAX_FIELDS = 100
MAX_PHONE_CHARS = 64
MAX_ID_CHARS = 128


@dataclass
class Row:
    """A row to send: its line in the file and the recipient as the API takes it."""

    line: int
    recipient: dict[str, Any]


@dataclass
class Skipped:
    """A row not sent, or rejected by the API: its line in the file and why."""

    line: int
    error: str
    id: str | None = None
    index: int | None = None  # its place in the request, when the API rejected it


@dataclass
class Leads:
    rows: list[Row] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def recipients(self) -> list[dict[str, Any]]:
        return [row.recipient for row in self.rows]


def parse_leads(text: str, source: str = "the file") -> Leads:
    """The recipients of a CSV text, each with its line number; `source` names it in errors.

    `phone_number` → the number, `id` → the recipient's id, `var.NAME` → the variable NAME, any
    other named column → metadata. Empty cells are left out; blank lines are skipped; a row
    without a number or with more cells than the header is reported in `skipped`, not sent.
    """
    text = text.removeprefix("\ufeff")
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise CliError(
            f"{source} is empty: it needs a header line with a {PHONE_COLUMN} column, then one row a recipient"
        )
    header: list[str] = []
    delimiter = ","
    for candidate in DELIMITERS:
        header = [h.strip() for h in next(csv.reader([first_line], delimiter=candidate))]
        if PHONE_COLUMN in header:
            delimiter = candidate
            break
    else:
        names = [h.strip() for h in next(csv.reader([first_line]))]
        raise CliError(
            f"{source} has no {PHONE_COLUMN} column (its columns: {', '.join(names)}): "
            f"name the column of numbers {PHONE_COLUMN}"
        )
    columns = _columns(header, source)
    leads = Leads()
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            leads.skipped.append(Skipped(line, f"not CSV: {exc}"))
            continue
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) > len(header) and any(cells[len(header) :]):
            leads.skipped.append(
                Skipped(line, f"{len(cells)} cells, but the header names {len(header)} columns")
            )
            continue
        recipient: dict[str, Any] = {}
        for (kind, name), cell in zip(columns, cells, strict=False):
            if not cell or kind == "ignore":
                continue
            if kind in ("variables", "metadata"):
                recipient.setdefault(kind, {})[name] = cell
            else:
                recipient[kind] = cell
        given_id = recipient.get(ID_COLUMN)
        phone = recipient.get(PHONE_COLUMN)
        if not phone:
            leads.skipped.append(Skipped(line, f"no {PHONE_COLUMN}", given_id))
        elif len(phone) > MAX_PHONE_CHARS:
            leads.skipped.append(Skipped(line, f"{PHONE_COLUMN} is not a valid phone number", given_id))
        elif given_id is not None and len(given_id) > MAX_ID_CHARS:
            leads.skipped.append(Skipped(line, f"id: use 1 to {MAX_ID_CHARS} letters, digits or _.:@+-"))
        else:
            leads.rows.append(Row(line, {PHONE_COLUMN: phone, **recipient}))
    return leads


def _columns(header: list[str], source: str) -> list[tuple[str, str]]:
    """What each column of the header is: (field of the recipient, name within it)."""
    columns: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in header:
        if not name:
            columns.append(("ignore", ""))
            continue
        if name in seen:
            raise CliError(f"{source} names the column {name!r} twice: give each column its own name")
        seen.add(name)
        if name in (PHONE_COLUMN, ID_COLUMN):
            columns.append((name, name))
        elif name.startswith(VARIABLE_PREFIX):
            variable = name[len(VARIABLE_PREFIX) :].strip()
            if not variable:
                raise CliError(
                    f"{source} has a column {name!r} without a variable name: name it {VARIABLE_PREFIX}NAME"
                )
            columns.append(("variables", variable))
        else:
            columns.append(("metadata", name))
    for kind, what in (("variables", f"{VARIABLE_PREFIX}NAME columns"), ("metadata", "metadata columns")):
        count = sum(1 for k, _ in columns if k == kind)
        if count > MAX_FIELDS:
            raise CliError(f"{source} has {count} {what}: a recipient takes at most {MAX_FIELDS}")
    return columns


def read_leads(path: Path) -> Leads:
    """The recipients of a CSV file; more than one request takes is refused here, before any is sent."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(
            f"{path} does not exist: pass the path of a CSV file with a {PHONE_COLUMN} column"
        ) from None
    except IsADirectoryError:
        raise CliError(f"{path} is a folder: pass the path of a CSV file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text: save it as CSV UTF-8") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    leads = parse_leads(text, str(path))
    if len(leads.rows) > MAX_ROWS:
        raise CliError(
            f"{path} has {len(leads.rows):,} recipients, more than the {MAX_ROWS:,} one request takes; "
            f"nothing was sent: split the file, create the campaign from the first {MAX_ROWS:,} rows and "
            "add the rest with `happ campaign append INTEGRATION CAMPAIGN_ID FILE`"
        )
    if not leads.rows:
        first = min(leads.skipped, key=lambda s: s.line, default=None)
        raise CliError(
            f"{path} has no row to send: "
            + (
                f"all {len(leads.skipped)} were skipped (line {first.line}: {first.error})"
                if first
                else f"add rows under the header, one {PHONE_COLUMN} each"
            )
        )
    return leads


def rejected_rows(leads: Leads, answer: Mapping[str, Any]) -> list[Skipped]:
    """The rows not sent and the rows the API rejected (by their index in the request), by line."""
    rejected = list(leads.skipped)
    for item in answer.get("rejected") or []:
        index = int(item["index"])
        line = leads.rows[index].line if 0 <= index < len(leads.rows) else -1
        rejected.append(Skipped(line, str(item.get("error") or "rejected"), item.get("id"), index))
    return sorted(rejected, key=lambda s: s.line)
