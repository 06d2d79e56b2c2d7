"""`HandlerRun`: one handler run durably; each context operation is an activity.

Workflow id `{integration}:handler:{name}:{key}`; search attributes `Integration`, `HandlerName`.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from happ_integ import registry
    from happ_integ.context import Context
    from happ_integ.durable import DurableExecutor, error_to_failure, workflow_clock
    from happ_integ.errors import HandlerFailed, HappError, ValidationFailed
    from happ_integ.handler import HandlerDefinition, handler_definition
    from happ_integ.logs import HandlerLogger
    from happ_integ.runner import execute_handler
    from happ_integ.steps import StepRunner
    from happ_integ.temporal import HandlerRunInput, HandlerRunResult


def sandboxed(definition: HandlerDefinition) -> HandlerDefinition:
    """The same handler, imported inside this run's sandbox.

    The worker imported it outside, for the gateway and the registry; running that copy would let
    `datetime.now()` or `random` in handler code pass unchecked. Importing the module here makes the
    sandbox watch the handler like workflow code. Runs on other threads import their own copies at
    the same moment; `registry.serial_imports` keeps them from deadlocking on Python's module locks.
    """
    # Deliberate, so no "imported after initial workflow load" warning for each run.
    with (
        registry.serial_imports(),
        workflow.unsafe.sandbox_import_notification_policy(workflow.SandboxImportNotificationPolicy.SILENT),
    ):
        module = importlib.import_module(definition.fn.__module__)
    return handler_definition(getattr(module, definition.fn.__name__))


# An input the worker cannot decode (too deeply nested, or not the model's shape) fails the run
# instead of failing its workflow task, which Temporal would retry forever.
@workflow.defn(failure_exception_types=[ValidationError, RecursionError])
class HandlerRun:
    @workflow.run
    async def run(self, inp: HandlerRunInput) -> HandlerRunResult:
        try:
            definition = sandboxed(registry.handler(inp.integration, inp.handler))
            payload = definition.payload_model.model_validate(inp.payload)
        except HappError as exc:
            raise error_to_failure(exc) from None
        except ValidationError as exc:
            raise error_to_failure(ValidationFailed(f"invalid payload for {inp.handler!r}: {exc}")) from None
        except Exception as exc:
            # Handler code that cannot even be loaded here (an import-time error, a call the sandbox
            # refuses at module level) will not load on a retry either: fail the run visibly.
            failure = HandlerFailed(f"cannot load handler {inp.handler!r}: {type(exc).__name__}: {exc}")
            raise error_to_failure(failure) from None
        trace_id = inp.trace_id or workflow.info().workflow_id
        log = HandlerLogger(
            integration=inp.integration,
            handler=inp.handler,
            trace_id=trace_id,
            sink=registry.sink(),
            clock=workflow.now,
        )
        ctx: Context[Any] = Context(
            payload=payload,
            executor=DurableExecutor(definition.retries, definition.timeout_seconds),
            integration_name=inp.integration,
            handler_name=inp.handler,
            trace_id=trace_id,
            log=log,
            step=StepRunner(log, workflow_clock),
            env=registry.settings(),
        )
        try:
            response = await execute_handler(definition, ctx, workflow_clock)
        except HappError as exc:
            # Every handler error (HandlerFailed for plain exceptions) fails this run visibly,
            # instead of failing the workflow task and retrying it forever.
            raise error_to_failure(exc) from None
        return HandlerRunResult(response=response.model_dump(mode="json", by_alias=True))
