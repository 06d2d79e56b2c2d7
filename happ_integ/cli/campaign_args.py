"""The arguments of `happ campaign …` and of `happ originate`: how each command is spelled,
checked and documented in `--help`; the commands themselves are in `happ_integ.cli.campaign`.

    campaign_args.register(commands, command)      # from happ_integ.cli's parser
    campaign_args.add_create_options(parser)       # the options `campaign create` and `originate` share
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from happ_integ.cli.campaign import (
    CAMPAIGN_ID,
    CAMPAIGN_STATUSES,
    cmd_append,
    cmd_cancel,
    cmd_create,
    cmd_list,
    cmd_pause,
    cmd_report,
    cmd_resume,
    cmd_retry,
    cmd_status,
    cmd_watch,
)
from happ_integ.cli.campaign_watch import FINAL, RECIPIENT_STATUSES
from happ_integ.cli.leads import ID_COLUMN, MAX_ROWS, PHONE_COLUMN, VARIABLE_PREFIX


def campaign_id_arg(text: str) -> str:
    if not CAMPAIGN_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a campaign id (they look like cmp_…; `happ campaign list` lists them)"
        )
    return text


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number: use {low} to {high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: use {low} to {high}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None


def _name(text: str) -> str:
    if not text.strip() or len(text) > 200:
        raise argparse.ArgumentTypeError("a campaign name has 1 to 200 characters")
    return text


def add_create_options(parser: argparse.ArgumentParser, *, name_required: bool = True) -> None:
    """The file and the settings of a new campaign (`campaign create`, and `originate`)."""
    parser.add_argument("integration")
    parser.add_argument(
        "file",
        help=f"the CSV file (UTF-8; comma, semicolon or tab separated; at most {MAX_ROWS:,} rows): "
        f"{PHONE_COLUMN}, optional {ID_COLUMN}, {VARIABLE_PREFIX}NAME columns as variables, others as metadata",
    )
    parser.add_argument(
        "--name",
        type=_name,
        required=name_required,
        help="the campaign's name" + ("" if name_required else " (default: the file's name and the time)"),
    )
    parser.add_argument(
        "--start-at", metavar="ISO", help="no dial before this (ISO date-time; no zone: local time)"
    )
    parser.add_argument(
        "--end-at", metavar="ISO", help="nothing new is dialled after this; the rest end expired"
    )
    parser.add_argument(
        "--max-concurrency",
        type=_bounded(1, 1000),
        metavar="N",
        help="this campaign's calls at once (default: the integration's concurrency_limit)",
    )
    parser.add_argument(
        "--max-attempts", type=_bounded(1, 20), metavar="N", help="replaces call_handling's max_attempts"
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key sent again answers the same campaign instead of creating another",
    )


def add_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how often the watch refreshes (default 1)",
    )


def register(commands: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """`happ campaign <action>`, each an API command built with the CLI's `command` helper."""
    group = commands.add_parser(
        "campaign",
        help="create, follow, pause, resume, cancel, retry and report campaigns (API)",
        description="A campaign: many recipients from a CSV file, called as one thing through the "
        "gateway's campaign routes.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="<action>")

    def action(name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any) -> Any:
        return command(name, func, help, parent=actions, label=f"campaign {name}", api=True, **kw)

    def target(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("integration")
        parser.add_argument("campaign_id", type=campaign_id_arg, help="cmp_…, as `happ campaign list` shows")
        return parser

    create = action(
        "create",
        cmd_create,
        "create a campaign from a CSV file and start it",
        description=f"Create a campaign from a CSV file and start it. The file has a {PHONE_COLUMN} "
        f"column, an optional {ID_COLUMN} column (default: the number), {VARIABLE_PREFIX}NAME columns "
        "(the agent's variable NAME) and any other columns (the recipient's metadata); empty cells are "
        "left out. Prints the campaign id, how many were accepted and each row rejected with its line "
        f"number. More than {MAX_ROWS:,} rows are refused before anything is sent: split the file and "
        "add the rest with `happ campaign append`. --watch then follows it to the end (Ctrl-C stops "
        "the watching only).",
        epilog="example:\n  printf 'phone_number,id,var.webinar,source\\n+380994829573,lead-1,12 Dec,ads\\n'"
        " > leads.csv\n  happ campaign create sofa leads.csv --name 'Webinar 12 Dec' --max-concurrency 5 "
        "--watch",
    )
    add_create_options(create)
    create.add_argument("--watch", action="store_true", help="follow it live until it has ended")
    create.add_argument(
        "--dry-run",
        action="store_true",
        help="store and dial nothing: show per row what would happen (invalid, do-not-call, several "
        "time zones, missing variables, first dial) and when the campaign would end",
    )
    add_interval(create)

    append = action(
        "append",
        cmd_append,
        "add the recipients of a CSV file to a campaign",
        description="Add the recipients of a CSV file (the same columns as `create`) to a campaign that "
        "is not finished or cancelled; prints how many were added and each row rejected.",
    )
    target(append)
    append.add_argument("file", help=f"the CSV file (at most {MAX_ROWS:,} rows)")

    listing = action("list", cmd_list, "list an integration's campaigns, newest first")
    listing.add_argument("integration")
    listing.add_argument(
        "--status",
        choices=CAMPAIGN_STATUSES,
        metavar="STATUS",
        help=f"only campaigns in this status: {', '.join(CAMPAIGN_STATUSES)}",
    )
    listing.add_argument(
        "--limit", type=_bounded(1, 200), default=50, help="at most this many (1-200, default 50)"
    )
    listing.add_argument("--cursor", help="the next page, as the previous page named it")

    target(
        action(
            "status",
            cmd_status,
            "show a campaign: its status and its recipients by status and by outcome",
        )
    )
    watching = target(
        action(
            "watch",
            cmd_watch,
            "follow a campaign live until it is finished or cancelled",
            description="A live progress bar (final recipients: completed, exhausted, failed, cancelled, "
            "expired, suppressed, against all) and the recipients by status and by outcome, refreshed "
            "until the campaign is finished or cancelled. Ctrl-C stops the watching, never the campaign.",
        )
    )
    add_interval(watching)
    target(
        action(
            "pause",
            cmd_pause,
            "pause a campaign: nothing new is dialled; calls on the line finish",
        )
    )
    target(action("resume", cmd_resume, "resume a paused campaign"))
    target(
        action(
            "cancel",
            cmd_cancel,
            "cancel a campaign: no new dial; calls not yet dialled end cancelled",
        )
    )
    retry = target(
        action(
            "retry",
            cmd_retry,
            "give the finished campaign's exhausted and failed recipients (or those named) a new call",
            description="Once a campaign has finished: a new call for each recipient that ended exhausted "
            "or failed or with outcome no_conversation, or for those --status and --outcome name.",
        )
    )
    retry.add_argument(
        "--status",
        dest="statuses",
        action="append",
        choices=RECIPIENT_STATUSES,
        metavar="STATUS",
        help=f"retry the recipients in this status (repeatable): {', '.join(FINAL)}",
    )
    retry.add_argument(
        "--outcome",
        dest="outcomes",
        action="append",
        metavar="OUTCOME",
        help="… or with this outcome (repeatable)",
    )
    report = target(
        action(
            "report",
            cmd_report,
            "the campaign's report: one CSV row per recipient",
            description="One CSV row per recipient (id, masked number, status, outcome, attempts, call id, "
            "last attempt, summary, reason), streamed to the file or to stdout.",
        )
    )
    report.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
