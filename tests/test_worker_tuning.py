"""The worker's tuning settings reach every worker it builds (HAPP_WORKER_*)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from temporalio.client import Client

from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from worker import build_workers


async def test_worker_settings_tune_every_worker(
    temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAPP_WORKER_MAX_ACTIVITIES", "7")
    monkeypatch.setenv("HAPP_WORKER_MAX_WORKFLOW_TASKS", "9")
    monkeypatch.setenv("HAPP_WORKER_CACHE_SIZE", "11")
    monkeypatch.setenv("HAPP_WORKER_POLLERS", "2")
    resources = SimpleNamespace(settings=Settings())
    integrations = discover_integrations(["sofa", "keycrm"])
    workers = build_workers(temporal_client, resources, integrations, CaptureSink())  # type: ignore[arg-type]
    assert len(workers) == 2
    for worker in workers:
        config = worker.config()
        assert config["max_concurrent_activities"] == 7
        assert config["max_concurrent_workflow_tasks"] == 9
        assert config["max_cached_workflows"] == 11
        assert config["max_concurrent_workflow_task_polls"] == 2
        assert config["max_concurrent_activity_task_polls"] == 2


def test_a_cache_of_zero_and_one_poller_are_allowed_but_no_less() -> None:
    assert Settings(HAPP_WORKER_CACHE_SIZE=0, HAPP_WORKER_POLLERS=1).worker_cache_size == 0  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="HAPP_WORKER_POLLERS"):
        Settings(HAPP_WORKER_POLLERS=0)  # type: ignore[call-arg]


def test_only_handler_runs_are_sandboxed() -> None:
    # Integration code runs in HandlerRun, inside the sandbox (non-deterministic calls caught);
    # the framework's call workflows run outside it, for speed, guarded by the replay tests.
    from temporalio.workflow import _Definition

    from workflows import WORKFLOWS, HandlerRun

    sandboxed = {cls.__name__: _Definition.must_from_class(cls).sandboxed for cls in WORKFLOWS}
    assert sandboxed == {
        "HandlerRun": True,
        "OutboundCall": False,
        "CallQueue": False,
        "DocumentRetention": False,
        "Campaign": False,
    }
    assert HandlerRun in WORKFLOWS
