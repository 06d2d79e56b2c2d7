"""The integrations this process serves, for code that finds a handler by name at run time.

The worker installs them once at start; the `HandlerRun` workflow, which the sandbox lets see
this module as is, looks its handler up here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from happ_integ.errors import NotFound
from happ_integ.handler import HandlerDefinition
from happ_integ.integration import Integration
from happ_integ.logs import LogSink
from happ_integ.settings import Settings

_integrations: dict[str, Integration] = {}
_sink: list[LogSink] = []
_settings: list[Settings] = []
_import_lock = threading.Lock()


@contextmanager
def serial_imports() -> Iterator[None]:
    """One sandbox at a time imports integration code.

    Each workflow run imports handler modules into its own sandbox, on the worker's thread pool.
    Python's per-module import locks are process-wide, so two threads importing sibling modules of
    one package in different orders deadlock (`_DeadlockError`); taking turns cannot.
    """
    with _import_lock:
        yield


def install(integrations: Mapping[str, Integration], sink: LogSink, settings: Settings) -> None:
    _integrations.update(integrations)
    _sink[:] = [sink]
    _settings[:] = [settings.for_handlers()]


def settings() -> Settings | None:
    """The worker's settings: read once at start, the same for every replay, so safe in workflow code."""
    return _settings[0] if _settings else None


def integration(name: str) -> Integration:
    try:
        return _integrations[name]
    except KeyError:
        raise NotFound(f"integration {name!r} is not served by this worker") from None


def handler(integration_name: str, handler_name: str) -> HandlerDefinition:
    return integration(integration_name).handler(handler_name)


def sink() -> LogSink:
    if not _sink:
        raise RuntimeError(
            "happ_integ.registry.install() was not called: start workers through worker.build_workers"
        )
    return _sink[0]
