"""When a long-lived workflow (`CallQueue`, `Campaign`) should continue as new: once Temporal
suggests it, or past a number of events a test sets to see it happen.

    if continue_as_new_due(state.continue_after_events) and workflow.all_handlers_finished():
        workflow.continue_as_new(state)
"""

from __future__ import annotations

from temporalio import workflow


def continue_as_new_due(continue_after_events: int | None) -> bool:
    info = workflow.info()
    if continue_after_events is not None:
        return info.get_current_history_length() > continue_after_events
    return info.is_continue_as_new_suggested()
