"""`happ new-integration <name> [--crm nethunt|keycrm|none]`: a new integration package and its test,
copied from the shipped integration of that CRM (`happ_integ.scaffold`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from happ_integ.cli.common import CliError, emit_json


def cmd_new_integration(args: argparse.Namespace) -> int:
    from happ_integ.scaffold import ScaffoldError, write_integration

    directory = Path(args.dir).expanduser()
    tests_dir = Path(args.tests_dir).expanduser() if args.tests_dir else None
    try:
        written = write_integration(args.name, crm=args.crm, directory=directory, tests_dir=tests_dir)
    except ScaffoldError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the integration: {exc.strerror or exc} ({exc.filename})") from None
    if args.json:
        emit_json(
            {
                "name": written.name,
                "crm": written.crm,
                "package": str(written.package),
                "test_file": str(written.test_file),
                "files": [str(path) for path in written.files],
            }
        )
        return 0
    print(f"wrote integration {written.name} ({written.crm}):")
    for path in written.files:
        print(f"  {path}")
    name = written.name
    print(
        "next:\n"
        f"  .venv/bin/python -m pytest {written.test_file}      # its handlers, inline and durably\n"
        f"  HAPP_INTEGRATIONS={name} make dev ARGS=--simulate    # served, with simulated calls\n"
        f"  happ call {name} +380994829573                       # the demo lead, from another terminal"
    )
    return 0
