"""`happ originate <integration> leads.csv`: a campaign from a CSV file, watched to the end.

The same as `happ campaign create <integration> leads.csv --watch` (see happ_integ.cli.campaign),
through the gateway's campaign routes (HAPP_API_URL or --api-url, HAPP_ADMIN_TOKEN): the file's
`phone_number` column, an optional `id` column, `var.NAME` columns as the agent's variables and
every other column as metadata. The campaign is named after the file and the time unless --name
says otherwise. Rows that cannot be sent, and those the API rejects, are reported with their line
number; the rest are called as one campaign. --no-wait returns once it is created. Ctrl-C stops
the watching only: the campaign goes on (`happ campaign pause|cancel` stops it).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from happ_integ.cli import campaign, campaign_args

MAX_NAME_CHARS = 200


def default_name(file: str, now: datetime | None = None) -> str:
    """`leads.csv` at 10:00 on 12 Dec 2025 → "leads 2025-12-12 10:00"."""
    stamp = f" {(now or datetime.now()).strftime('%Y-%m-%d %H:%M')}"
    stem = Path(file).stem.strip() or "campaign"
    return stem[: MAX_NAME_CHARS - len(stamp)] + stamp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    campaign_args.add_create_options(parser, name_required=False)
    parser.add_argument("--no-wait", action="store_true", help="create the campaign and return")
    campaign_args.add_interval(parser)


def cmd_originate(args: argparse.Namespace) -> int:
    if args.name is None:
        args.name = default_name(args.file)
    args.watch = not args.no_wait
    return campaign.cmd_create(args)
