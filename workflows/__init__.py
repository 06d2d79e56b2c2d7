"""Temporal workflows; `WORKFLOWS` is what a worker runs.

- `HandlerRun`: one handler run durably (`workflows.handler_run`);
- `OutboundCall`: one outbound call, every attempt to the CRM update (`workflows.outbound_call`);
- `CallQueue`: the concurrency limit of an integration's calls (`workflows.call_queue`).

Start, signal, update or query them through `workflows.control`.
"""

from workflows.call_queue import CallQueue
from workflows.handler_run import HandlerRun
from workflows.outbound_call import OutboundCall

WORKFLOWS: list[type] = [HandlerRun, OutboundCall, CallQueue]

__all__ = ["WORKFLOWS", "CallQueue", "HandlerRun", "OutboundCall"]
