"""Each context operation is one typed handle, and a durable run executes it as it always has."""

from __future__ import annotations

import sys
import typing

from temporalio import activity

from activities.context_ops import context_activities
from happ_integ.ops import Operation, Resources, load_operations

# How a durable run executes each operation: a local activity (a marker in the history, in the
# worker's own process) or a regular one. Recorded histories depend on this split and on the
# names (tests/histories/): change a row only together with a workflow patch.
EXECUTED_AS = {
    "db.insert": "local",
    "db.update": "local",
    "db.select": "local",
    "db.delete": "local",
    "db.query": "local",
    "cache.get": "local",
    "cache.set": "local",
    "cache.delete": "local",
    "config.get": "local",
    "creds.get": "local",
    "http.request": "regular",
    "crm.search_records": "regular",
    "crm.get_record": "regular",
    "crm.update_record": "regular",
    "crm.create_record": "regular",
    "crm.create_comment": "regular",
    "crm.create_call_log": "regular",
    "keycrm.find_buyers": "regular",
    "keycrm.find_cards": "regular",
    "keycrm.get_card": "regular",
    "keycrm.update_card": "regular",
}


def test_every_operation_runs_as_a_local_or_regular_activity_as_before() -> None:
    executed_as = {name: "local" if op.local else "regular" for name, op in load_operations().items()}
    assert executed_as == EXECUTED_AS


def test_every_operation_is_a_handle_in_the_module_that_implements_it() -> None:
    for name, op in load_operations().items():
        assert isinstance(op, Operation) and op.name == name
        module = sys.modules[op.impl.__module__]
        assert getattr(module, op.impl.__name__) is op, f"{name}: its implementation's name is not its handle"


def test_every_operation_is_an_activity_of_its_own_name() -> None:
    # The activities only hold on to the resources when they run.
    registered = context_activities(typing.cast(Resources, None))
    names = {defn.name for defn in map(activity._Definition.must_from_callable, registered)}
    assert names == set(EXECUTED_AS)
