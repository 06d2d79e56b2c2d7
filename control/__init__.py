"""The client side of the Temporal wiring: starting, signalling, updating and querying our
workflows, the one mapping of Temporal's errors onto happ errors, and the Schedules.

    from control.client import start_call, send_call_event, call_state    # the calls
    from control.client import start_handler_run, handler_result           # durable handler runs
    from control.schedules import setup_integration, fire_schedules        # cron entries

The gateway (`api/`), the CLI, `happ dev` and the worker (`control.client.TemporalCallControl`,
handed to the call's activities) use it; `workflows/` holds only workflow definitions and never
imports it.
"""
