"""What the console's pages share: which integrations have calls, and looking one up by name."""

from __future__ import annotations

from api.runtime import ApiRuntime
from happ_integ.errors import NotFound


def call_flows(runtime: ApiRuntime) -> list[str]:
    """The integrations served here that make calls (and so have calls and campaigns)."""
    return sorted(name for name, i in runtime.integrations.items() if i.call_flow is not None)


def call_flow(runtime: ApiRuntime, integration: str) -> str:
    if integration not in call_flows(runtime):
        raise NotFound(f"no integration {integration!r} with calls is served here")
    return integration
