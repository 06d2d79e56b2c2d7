"""Temporal workflows; `WORKFLOWS` is what a worker runs.

- `HandlerRun`: one handler run durably (`workflows.handler_run`);
- `OutboundCall`: one outbound call, every attempt to the CRM update (`workflows.outbound_call`);
- `CallQueue`: the concurrency limit of an integration's calls (`workflows.call_queue`);
- `Campaign`: many recipients' calls as one campaign (`workflows.campaign`);
- `DocumentRetention`: the daily purge of old call documents (`workflows.retention`).

Start, signal, update or query them through `control.client`: the client side, a package of its
own, which imports these workflows and is never imported by them.

The names are loaded when first asked for, not with the package: the workflow sandbox imports this
package anew for every run, and a `HandlerRun` should not pay for defining `OutboundCall` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.call_queue import CallQueue
    from workflows.campaign import Campaign
    from workflows.handler_run import HandlerRun
    from workflows.outbound_call import OutboundCall
    from workflows.retention import DocumentRetention

    WORKFLOWS: list[type]

__all__ = ["WORKFLOWS", "CallQueue", "Campaign", "DocumentRetention", "HandlerRun", "OutboundCall"]


def __getattr__(name: str) -> Any:
    if name in ("CallQueue", "Campaign", "DocumentRetention", "HandlerRun", "OutboundCall", "WORKFLOWS"):
        from workflows.call_queue import CallQueue
        from workflows.campaign import Campaign
        from workflows.handler_run import HandlerRun
        from workflows.outbound_call import OutboundCall
        from workflows.retention import DocumentRetention

        found: dict[str, Any] = {
            "CallQueue": CallQueue,
            "Campaign": Campaign,
            "DocumentRetention": DocumentRetention,
            "HandlerRun": HandlerRun,
            "OutboundCall": OutboundCall,
            "WORKFLOWS": [HandlerRun, OutboundCall, CallQueue, Campaign, DocumentRetention],
        }
        return found[name]
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")
