"""The `happ` command.

Processes:
  happ dev [--simulate]                  the whole stack on this machine (embedded PostgreSQL + Temporal)
  happ api                               the FastAPI gateway
  happ worker [--integration N]          a Temporal worker
  happ simulator                         the loopback peers (voice SaaS, ElevenLabs, NetHunt, KeyCRM)

Operating (each with --help and --json; a failure is one line on stderr naming the fix):
  happ setup [integration…]              migrations, placeholder secrets, default configs, Schedules
  happ call <integration> <phone>        start one call (PostgreSQL + Temporal)
  happ originate <integration> leads.csv a campaign from a CSV file, watched to its end (API)
  happ campaign create|append|list|status|watch|pause|resume|cancel|retry|report <integration> …
                                         campaigns of many recipients from CSV files (API)
  happ dnc add|remove|list|import …     the do-not-call list every integration shares (API)
  happ calls <integration>               the latest calls (API)
  happ call-status <integration> <id>    one call's state, attempts and Web UI link (API)
  happ cancel <integration> <id>         no further attempt (API)
  happ secrets set|list <integration>    write-only secret values (API)
  happ secrets rotate-key                re-encrypt every secret under the first HAPP_SECRET_KEY key
  happ config get|set <integration> <key> [json]   (API)
  happ trigger <integration> [handler]   fire its Schedules now
  happ new-integration <name> [--crm …]  a new integration package and its test

"(API)" commands use the gateway's admin routes at HAPP_API_URL (default
http://HAPP_API_HOST:HAPP_API_PORT) with HAPP_ADMIN_TOKEN; the others reach PostgreSQL
(DATABASE_URL) and Temporal (TEMPORAL_ADDRESS) themselves. In a folder where `happ dev` runs, what
is unset comes from it (.happ/dev-secrets.json and the dev ports).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from happ_integ.calls.models import CallStatus
from happ_integ.cli.common import CliError, one_line

__all__ = ["build_parser", "main"]

CALL_STATUSES = tuple(status.value for status in CallStatus)
CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
SETTINGS_NOTE = (
    "API commands: HAPP_API_URL (or --api-url), HAPP_ADMIN_TOKEN. Others: DATABASE_URL, "
    "TEMPORAL_ADDRESS (and HAPP_SECRET_KEY for secrets). Unset ones come from a `happ dev` run in "
    "this folder."
)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake reported on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message)} (see `{self.prog} --help`)\n")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: use 1 to 500") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError(f"{value} is out of range: use 1 to 500")
    return value


def _call_id(text: str) -> str:
    if not CALL_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a call id (they look like c_…; `happ calls` lists them)"
        )
    return text


def _interval(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None


def build_parser() -> Parser:
    from happ_integ.cli import admin, calls, campaign_args, dnc, new_integration, originate, serve

    parser = Parser(
        prog="happ",
        description="Voice-AI outbound-call integrations on Temporal.",
        epilog=SETTINGS_NOTE,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    def command(
        name: str,
        func: Callable[[argparse.Namespace], int],
        help: str,
        *,
        parent: argparse._SubParsersAction[Parser] = commands,
        label: str | None = None,
        operator: bool = True,
        api: bool = False,
        description: str | None = None,
        epilog: str | None = None,
    ) -> Parser:
        sub = parent.add_parser(
            name,
            help=help,
            description=description or help,
            epilog=epilog if epilog is not None else (SETTINGS_NOTE if operator else None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(func=func, operator=operator, label=label or name)
        if operator:
            sub.add_argument(
                "--json", action="store_true", help="print one JSON document on stdout, for scripts"
            )
        if api:
            sub.add_argument(
                "--api-url",
                metavar="URL",
                help="the gateway (default: HAPP_API_URL, else http://127.0.0.1:3001)",
            )
        return sub

    # The processes, exactly as before.
    dev = command(
        "dev",
        serve.cmd_dev,
        "run PostgreSQL, Temporal (with the Web UI), the worker and the API",
        operator=False,
    )
    dev.add_argument("--simulate", action="store_true", help="also run the loopback voice/CRM peers")
    command("api", serve.cmd_api, "run the FastAPI gateway on HAPP_API_HOST:HAPP_API_PORT", operator=False)
    worker = command("worker", serve.cmd_worker, "run a Temporal worker", operator=False)
    worker.add_argument("--integration", action="append", help="only this integration (repeatable)")
    setup = command(
        "setup",
        admin.cmd_setup,
        "run setup: migrations, placeholder secrets, default configs, Schedules",
        description="Migrations, placeholder secrets, default configs and Schedules of each integration "
        "(every one, or HAPP_INTEGRATIONS, when none is named); safe to run again. Prints one JSON "
        "report a line.",
    )
    setup.add_argument("names", nargs="*", metavar="integration", help="only these integrations")
    setup.add_argument("--integration", action="append", help="only this integration (repeatable)")
    command(
        "simulator",
        serve.cmd_simulator,
        "run the loopback peers (voice SaaS, NetHunt, KeyCRM) on :3002",
        operator=False,
    )

    # Calls.
    call = command(
        "call",
        calls.cmd_call,
        "start one outbound call",
        description="Start one call straight through PostgreSQL and Temporal, with the integration's "
        "call_handling config. A number that has a call in flight gets that call's id.",
        epilog='example: happ call sofa +380994829573 --metadata \'{"campaign": "spring"}\'\n\n'
        + SETTINGS_NOTE,
    )
    call.add_argument("integration")
    call.add_argument("phone", help="the number, E.164 or local to call_handling.default_region")
    call.add_argument(
        "--metadata", metavar="JSON", help="a JSON object kept with the call, passed to the lookup"
    )

    listing = command(
        "calls",
        calls.cmd_calls,
        "list an integration's calls, newest first",
        api=True,
        description="A table of the integration's calls, newest first: call id, status, attempt, masked "
        "phone, last update.",
    )
    listing.add_argument("integration")
    listing.add_argument(
        "--status",
        choices=CALL_STATUSES,
        metavar="STATUS",
        help=f"only calls in this status: {', '.join(CALL_STATUSES)}",
    )
    listing.add_argument("--limit", type=_limit, default=50, help="at most this many (1-500, default 50)")
    listing.add_argument("--cursor", help="the next page, as the previous page named it")

    status = command(
        "call-status",
        calls.cmd_call_status,
        "show one call: its state, its attempts and its Web UI link",
        api=True,
        description="One call's whole state: status, attempts, next attempt, variables, analysis, and its "
        "workflow in the Temporal Web UI (HAPP_WEB_UI_URL, default http://127.0.0.1:8233).",
    )
    status.add_argument("integration")
    status.add_argument("call_id", type=_call_id)

    cancel = command(
        "cancel",
        calls.cmd_cancel,
        "cancel a call: no further attempt",
        api=True,
        description="No further attempt of the call; a call on the line finishes and its post-call still runs.",
    )
    cancel.add_argument("integration")
    cancel.add_argument("call_id", type=_call_id)
    cancel.add_argument(
        "--wait",
        type=_interval,
        default=3.0,
        metavar="SECONDS",
        help="how long to wait for the call to end (default 3; a call on the line takes longer)",
    )

    batch = command(
        "originate",
        originate.cmd_originate,
        "start a campaign from a CSV file and watch it to the end (campaign create --watch)",
        api=True,
        description="The same as `happ campaign create … --watch`: a campaign of a call for each row of "
        "a CSV file (a phone_number column, an optional id column, var.NAME columns as the agent's "
        "variables, every other column as metadata), named after the file and the time unless --name "
        "is given, then a live count of its recipients by status and outcome until it is finished or "
        "cancelled. Rows that cannot be called are reported with their line number and skipped. "
        "Ctrl-C stops the watching only: the campaign goes on.",
        epilog="example:\n  printf 'phone_number,name\\n+380994829573,Ivan\\n' > leads.csv\n"
        "  happ originate sofa leads.csv\n\n" + SETTINGS_NOTE,
    )
    originate.add_arguments(batch)

    # Campaigns.
    campaign_args.register(commands, command)

    # The do-not-call list.
    dnc.register(commands, command)

    # Secrets and config.
    secrets = commands.add_parser(
        "secrets",
        help="set, list or re-encrypt an integration's secrets",
        description="An integration's secrets: values are write-only.",
    )
    secret_commands = secrets.add_subparsers(dest="action", required=True, metavar="<action>")
    secret_set = command(
        "set",
        admin.cmd_secrets_set,
        "set one secret, read from a hidden prompt (or stdin), never from the command line",
        parent=secret_commands,
        label="secrets set",
        api=True,
        epilog='example: printf %s "$KEY" | happ secrets set sofa NETHUNT_API_KEY\n\n' + SETTINGS_NOTE,
    )
    secret_set.add_argument("integration")
    secret_set.add_argument("name", help="the secret's name, e.g. NETHUNT_API_KEY")
    secret_set.add_argument("--clear", action="store_true", help="unset the secret instead")
    secret_set.add_argument(
        "--new", action="store_true", help="add a secret the integration does not list yet"
    )
    secret_list = command(
        "list",
        admin.cmd_secrets_list,
        "list the secrets' names and whether each is set (never the values)",
        parent=secret_commands,
        label="secrets list",
        api=True,
    )
    secret_list.add_argument("integration")
    command(
        "rotate-key",
        admin.cmd_rotate_key,
        "re-encrypt every secret of every integration under the first key of HAPP_SECRET_KEY",
        parent=secret_commands,
        label="secrets rotate-key",
        description="Re-encrypt every secret of every integration under the first key of HAPP_SECRET_KEY. "
        "Put the new key first and keep the old ones after it (HAPP_SECRET_KEY=new,old): the old keys "
        "still decrypt until this has run; then they can be dropped. Prints how many were re-encrypted.",
    )

    config = commands.add_parser(
        "config", help="read or change an integration's config", description="An integration's configs."
    )
    config_commands = config.add_subparsers(dest="action", required=True, metavar="<action>")
    config_get = command(
        "get",
        admin.cmd_config_get,
        "print a config: the stored value over the default",
        parent=config_commands,
        label="config get",
        api=True,
    )
    config_get.add_argument("integration")
    config_get.add_argument("key", help="e.g. call_handling")
    config_set = command(
        "set",
        admin.cmd_config_set,
        "store a config (validated like the API does) and print what was stored",
        parent=config_commands,
        label="config set",
        api=True,
        description="Store a config value, validated against the default's model when there is one, "
        "as PUT /{integration}/config/{key} does: fields left out take their defaults (with --merge, "
        "their current values). Prints what was stored.",
        epilog="example: happ config set sofa call_handling '{\"concurrency_limit\": 5}'\n\n" + SETTINGS_NOTE,
    )
    config_set.add_argument("integration")
    config_set.add_argument("key", help="e.g. call_handling")
    config_set.add_argument(
        "value", nargs="?", metavar="json", help="a JSON object (default: read from stdin)"
    )
    config_set.add_argument(
        "--merge", action="store_true", help="keep the current value of every field the JSON leaves out"
    )

    trigger = command(
        "trigger",
        admin.cmd_trigger,
        "fire an integration's Schedules now",
        description="Fire the integration's Schedules now (each, or the one of the handler named), through "
        "the Schedule, so the run shows among its recent actions; prints the workflow id of the run each "
        "started (a trigger right after another waits for the next second, so each starts its own run).",
    )
    trigger.add_argument("integration")
    trigger.add_argument("handler", nargs="?", help="only this scheduled handler")

    scaffold = command(
        "new-integration",
        new_integration.cmd_new_integration,
        "write a new integration package and its tests",
        description="Write integrations/<name>/ (__init__.py with a call flow, config.py, models.py, "
        "migrations.py, handlers/crm_lookup.py, handlers/crm_postcall.py) and "
        "tests/integrations/test_<name>.py, which passes as written. --crm picks the CRM the handlers "
        "talk to: nethunt (like integrations/sofa), keycrm (like integrations/keycrm) or none.",
        epilog="example: happ new-integration acme --crm keycrm",
    )
    scaffold.add_argument("name", help="lower-case letters, digits and _, starting with a letter")
    scaffold.add_argument(
        "--crm", choices=("nethunt", "keycrm", "none"), default="nethunt", help="default: nethunt"
    )
    scaffold.add_argument(
        "--dir", default="integrations", help="the integrations folder (default: integrations)"
    )
    scaffold.add_argument(
        "--tests-dir", metavar="DIR", help="where the test goes (default: tests/integrations beside --dir)"
    )
    return parser


def _fail(label: str, message: str) -> None:
    sys.stderr.write(f"happ {label}: {one_line(message)}\n")
    sys.stderr.flush()


def run_operator(args: argparse.Namespace) -> int:
    """An operator command, its failures as one line on stderr."""
    from happ_integ.cli.common import quiet
    from happ_integ.errors import HappError

    quiet()
    label = args.label
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        _fail(label, exc.message)
        return exc.code
    except HappError as exc:
        _fail(label, exc.message)
        return 1
    except KeyboardInterrupt:
        _fail(label, "interrupted (Ctrl-C)")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # a bug of ours: still one line, with what it was
        _fail(label, f"unexpected {type(exc).__name__}: {exc}")
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.operator:
        args.func(args)
        return
    code = run_operator(args)
    if argv is None and "temporalio.bridge.temporal_sdk_bridge" in sys.modules:
        # The Temporal client's Rust threads outlive the event loop and can abort the interpreter
        # while it finalizes ("PyGILState_Release … must be current", exit -6), after the command
        # succeeded. Its work and output are done: flush them and leave without teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise SystemExit(code)
