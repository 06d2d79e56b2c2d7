"""`happ secrets …`, `happ config …` (through the API's admin routes), `happ setup`, `happ trigger`
and `happ secrets rotate-key` (straight to PostgreSQL and Temporal)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TYPE_CHECKING, Any

from happ_integ.cli.admin_api import AdminApi
from happ_integ.cli.common import (
    CliError,
    emit_json,
    integration_names,
    load_integration,
    load_settings,
    parse_json_object,
    pretty,
    table,
    unknown_integration,
)
from happ_integ.cli.direct import connect_temporal, direct

if TYPE_CHECKING:
    from happ_integ.provision import SetupReport

MAX_SECRET_CHARS = 8192


# Secrets -----------------------------------------------------------------------------------------


def check_secret_name(name: str) -> str:
    from happ_integ.stores.creds import SECRET_NAME

    if not SECRET_NAME.match(name):
        raise CliError(
            f"{name!r} is not a secret name: use A-Z, 0-9 and _, starting with a letter (e.g. NETHUNT_API_KEY)"
        )
    return name


def read_secret_value(name: str, integration: str) -> str:
    """From a hidden prompt on a terminal, else everything on stdin (one trailing newline dropped)."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{name} of {integration} (the value is not shown): ")
    else:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    if not value:
        raise CliError(
            f"no value for {name}: type it at the prompt or pipe it to stdin "
            f'(`printf %s "$VALUE" | happ secrets set {integration} {name}`); to clear it, pass --clear'
        )
    if len(value) > MAX_SECRET_CHARS:
        raise CliError(
            f"the value of {name} is longer than {MAX_SECRET_CHARS} characters: check what was piped in"
        )
    return value


def cmd_secrets_set(args: argparse.Namespace) -> int:
    name = check_secret_name(args.name)
    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        # Asked first, so a wrong token or name fails before the value is typed.
        known = api.call("GET", "/secrets")["secrets"]
        if name not in known and not args.new:
            raise CliError(
                f"integration {args.integration!r} has no secret {name!r} (its secrets: "
                f"{', '.join(sorted(known)) or 'none'}): check the spelling, or pass --new to add it"
            )
        value = "" if args.clear else read_secret_value(name, args.integration)
        answer = api.call("PUT", "/secrets", json={name: value})
    if args.json:
        emit_json(
            {"integration": args.integration, "updated": answer.get("updated", []), "cleared": args.clear}
        )
    elif args.clear:
        print(f"{name} of {args.integration} is cleared (unset)")
    else:
        print(f"{name} of {args.integration} is set (the value is stored encrypted and never shown)")
    return 0


def cmd_secrets_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        secrets: dict[str, bool] = api.call("GET", "/secrets")["secrets"]
    if args.json:
        emit_json({"integration": args.integration, "secrets": secrets})
        return 0
    if not secrets:
        print(
            f"{args.integration} has no secrets yet (`happ setup {args.integration}` adds the declared ones)"
        )
        return 0
    print(
        table([[n, "set" if is_set else "unset"] for n, is_set in sorted(secrets.items())], ["NAME", "STATE"])
    )
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from happ_integ.errors import HappError
    from happ_integ.keys import KeyRing
    from happ_integ.stores.schema import with_core_schema

    settings = load_settings()
    if settings.secret_key is None:
        raise CliError(
            "HAPP_SECRET_KEY is not set: set it to the new key first, then the old ones "
            "(HAPP_SECRET_KEY=new_key,old_key)"
        )
    try:
        keys = KeyRing.parse(settings.secret_key, "HAPP_SECRET_KEY")
    except HappError as exc:
        raise CliError(exc.message) from None

    async def run() -> dict[str, int]:
        done: dict[str, int] = {}
        async with direct(settings, {}, temporal=False, need_secret_key=True) as (resources, _):
            pool = resources.pool
            rows = await with_core_schema(
                pool,
                lambda: pool.fetch(
                    "SELECT DISTINCT integration FROM happ_secrets WHERE ciphertext IS NOT NULL ORDER BY 1"
                ),
                redact=True,
            )
            for row in rows:
                integration = row["integration"]
                try:
                    done[integration] = await resources.creds(integration).rotate_all()
                except HappError as exc:
                    before = f" (those of {', '.join(done)} were re-encrypted already)" if done else ""
                    raise CliError(f"{integration}: {exc.message}{before}") from None
        return done

    done = asyncio.run(run())
    total = sum(done.values())
    if args.json:
        emit_json({"rotated": total, "integrations": done, "keys": len(keys.raw), "key_id": keys.key_id})
        return 0
    each = ", ".join(f"{name} {count}" for name, count in done.items())
    print(
        f"re-encrypted {total} secrets of {len(done)} integrations{f' ({each})' if each else ''} "
        f"under the first key of HAPP_SECRET_KEY (key id {keys.key_id})"
    )
    if len(keys.raw) > 1:
        print(
            "the other keys can leave HAPP_SECRET_KEY once runs started before now have ended "
            "(their secret references carry the old key's tag)"
        )
    return 0


# Config ------------------------------------------------------------------------------------------


def check_config_key(key: str) -> str:
    from happ_integ.stores.config import CONFIG_KEY

    if not CONFIG_KEY.match(key):
        raise CliError(f"{key!r} is not a config key: use letters, digits and _ . : - (e.g. call_handling)")
    return key


def _config_hint(integration: str) -> str:
    try:
        keys = sorted(load_integration(integration).default_configs)
    except Exception:  # not an integration of this checkout: the API's word is all there is
        return f"see `happ config get {integration} call_handling`"
    return f"its configs: {', '.join(keys) or 'none'}"


def cmd_config_get(args: argparse.Namespace) -> int:
    key = check_config_key(args.key)
    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        entry = api.call("GET", f"/config/{key}", not_found_hint=_config_hint(args.integration))
    if args.json:
        emit_json({"integration": args.integration, **entry})
    else:
        print(pretty(entry["value"]))
    return 0


def cmd_config_set(args: argparse.Namespace) -> int:
    key = check_config_key(args.key)
    if args.value is None:
        if sys.stdin.isatty():
            raise CliError(
                f"no value: pass it as JSON, e.g. happ config set {args.integration} {key} "
                "'{\"concurrency_limit\": 5}', or pipe it to stdin"
            )
        args.value = sys.stdin.read()
    value = parse_json_object(args.value, "the value")
    settings = load_settings()
    with AdminApi(settings, args.integration, args.api_url) as api:
        if args.merge:
            current = api.call("GET", f"/config/{key}", not_found_hint=_config_hint(args.integration))
            value = {**current["value"], **value}
        entry = api.call("PUT", f"/config/{key}", json=value)
    if args.json:
        emit_json({"integration": args.integration, **entry})
    else:
        print(f"stored {key} of {args.integration}:")
        print(pretty(entry["value"]))
    return 0


# Setup and schedules -----------------------------------------------------------------------------


def cmd_setup(args: argparse.Namespace) -> int:
    from control.schedules import setup_integration
    from happ_integ.integration import discover_integrations

    names = [*(args.names or []), *(args.integration or [])]
    for name in names:
        if name not in integration_names():
            raise unknown_integration(name)
    settings = load_settings()
    integrations = discover_integrations(names or settings.integrations)

    async def run() -> list[SetupReport]:
        reports = []
        async with direct(settings, integrations, need_secret_key=True) as (resources, client):
            assert client is not None
            for integration in integrations.values():
                report = await setup_integration(resources, client, integration)
                reports.append(report)
                if not args.json:
                    print(report.model_dump_json(), flush=True)
        return reports

    reports = asyncio.run(run())
    if args.json:
        emit_json({"setup": [r.model_dump(mode="json") for r in reports]})
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    from control.client import temporal_errors
    from control.schedules import FiredRun, fire_schedules
    from happ_integ.errors import NotFound

    settings = load_settings()
    integration = load_integration(args.integration)
    name = integration.name
    handlers = sorted({entry.handler for entry in integration.scheduled})
    if not handlers:
        raise CliError(f"integration {name!r} has no scheduled handlers: there is nothing to trigger")
    if args.handler is not None and args.handler not in handlers:
        raise CliError(
            f"integration {name!r} has no scheduled handler {args.handler!r}: its scheduled handlers are "
            f"{', '.join(handlers)}"
        )

    async def run() -> dict[str, FiredRun | None]:
        client = await connect_temporal(settings)
        try:
            with temporal_errors():
                return await fire_schedules(client, integration, args.handler)
        except NotFound as exc:
            if "does not exist yet" in exc.message:
                raise CliError(f"{exc.message.split(':')[0]}: run `happ setup {name}` first") from None
            raise

    runs = asyncio.run(run())
    triggered = list(runs)
    links = {
        sid: f"{settings.web_ui()}/namespaces/{settings.temporal_namespace}/schedules/{sid}"
        for sid in triggered
    }
    if args.json:
        # `runs`: the workflow each trigger started, or null if the Schedule had not started it yet.
        document: dict[str, Any] = {
            "integration": name,
            "triggered": triggered,
            "runs": {
                sid: {"workflow_id": run.workflow_id, "run_id": run.run_id} if run else None
                for sid, run in runs.items()
            },
            "web_ui": links,
        }
        emit_json(document)
        return 0
    for sid, started in runs.items():
        what = f"run {started.workflow_id}" if started else "its run has not started yet"
        print(f"fired {sid} now: {what}   {links[sid]}")
    return 0
