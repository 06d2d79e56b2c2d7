"""Tables of keycrm's own; the call flow brings `keycrm_calls` by itself.

    MIGRATIONS = [
        Migration("keycrm_001_leads", "CREATE TABLE {{leads}} (id text PRIMARY KEY, phone text NOT NULL)"),
    ]

`{{leads}}` is the table `keycrm_leads`, which handlers reach as `ctx.db.select("leads", …)`.
Migrations run once each, in this order, at `happ setup keycrm`: add new ones at the end and
never change one that has run.
"""

from happ_integ import Migration

MIGRATIONS: list[Migration] = []
