"""`happ dev`, `happ api`, `happ worker`, `happ simulator`: the long-running processes."""

from __future__ import annotations

import argparse
import signal


def cmd_dev(args: argparse.Namespace) -> int:
    from happ_integ.dev import run_dev
    from happ_integ.settings import Settings

    run_dev(Settings(), simulate=args.simulate)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import KEEP_ALIVE_SECONDS, create_app
    from happ_integ.codec import require_payload_encryption
    from happ_integ.settings import Settings

    settings = Settings()
    require_payload_encryption(settings, "happ api")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found; a
    # no-op one there makes a requested stop exit 0 instead of "killed by signal".
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=settings.api_access_log,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker import main as worker_main

    worker_main(args.integration)
    return 0


def cmd_simulator(args: argparse.Namespace) -> int:
    from happ_integ.settings import Settings
    from simulator.app import run_simulator

    run_simulator("127.0.0.1", Settings().dev_simulator_port)
    return 0
