"""Temporal workflows; `WORKFLOWS` is what a worker runs.

- `HandlerRun`: one handler run durably (`workflows.handler_run`).

Start, signal, update or query them through `workflows.control`.
"""

from workflows.handler_run import HandlerRun

WORKFLOWS: list[type] = [HandlerRun]

__all__ = ["WORKFLOWS", "HandlerRun"]
