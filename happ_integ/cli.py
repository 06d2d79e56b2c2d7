"""The `happ` command.

happ dev [--simulate]            the whole stack on this machine (embedded PostgreSQL + Temporal)
happ api                         the FastAPI gateway
happ worker [--integration N]    a Temporal worker
happ setup [--integration N]     migrations, placeholder secrets, default configs, Schedules
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def _setup(names: list[str] | None) -> None:
    from happ_integ.integration import discover_integrations
    from happ_integ.runtime import close_resources, open_resources
    from happ_integ.settings import Settings
    from happ_integ.temporal import connect_settings
    from workflows.schedules import setup_integration

    async def run() -> None:
        settings = Settings()
        integrations = discover_integrations(names or settings.integrations)
        client = await connect_settings(settings)
        resources = await open_resources(settings, integrations)
        try:
            for integration in integrations.values():
                report = await setup_integration(resources, client, integration)
                print(report.model_dump_json())
        finally:
            await close_resources(resources)

    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="happ", description="Voice-AI outbound-call integrations on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "dev", help="run PostgreSQL, Temporal (with the Web UI), the worker and the API"
    )
    dev.add_argument("--simulate", action="store_true", help="also run the loopback voice/CRM peers")
    commands.add_parser("api", help="run the FastAPI gateway on HAPP_API_HOST:HAPP_API_PORT")
    for name in ("worker", "setup"):
        sub = commands.add_parser(name, help=f"run {'a Temporal worker' if name == 'worker' else 'setup'}")
        sub.add_argument("--integration", action="append", help="only this integration (repeatable)")
    commands.add_parser("simulator", help="run the loopback peers (voice SaaS, NetHunt, KeyCRM) on :3002")
    args = parser.parse_args(argv)

    from happ_integ.settings import Settings

    if args.command == "dev":
        from happ_integ.dev import run_dev

        run_dev(Settings(), simulate=args.simulate)
    elif args.command == "api":
        import uvicorn

        from api.app import create_app

        settings = Settings()
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found; a
        # no-op one there makes a requested stop exit 0 instead of "killed by signal".
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info")
    elif args.command == "worker":
        from worker import main as worker_main

        worker_main(args.integration)
    elif args.command == "setup":
        _setup(args.integration)
    elif args.command == "simulator":
        from simulator.app import run_simulator

        run_simulator("127.0.0.1", Settings().dev_simulator_port)
    else:  # pragma: no cover - argparse refuses unknown commands
        parser.print_help()
        sys.exit(2)


if __name__ == "__main__":
    main()
