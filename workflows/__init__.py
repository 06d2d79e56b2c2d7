"""Temporal workflows: HandlerRun (a handler run durably); OutboundCall and CallQueue follow."""
