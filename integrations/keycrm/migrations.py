"""No tables of its own: the call flow brings `keycrm_calls`."""

from happ_integ import Migration

MIGRATIONS: list[Migration] = []
