"""The `calls` fixture of the call workflow tests (see `tests.workflows.harness`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.harness import calls_fixture


@pytest.fixture
async def calls(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Callable[..., object]]:
    async for start in calls_fixture(time_skipping_env):
        yield start
