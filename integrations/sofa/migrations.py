"""Tables of sofa's own; the call flow brings `sofa_calls` by itself.

    MIGRATIONS = [
        Migration("sofa_001_leads", "CREATE TABLE {{leads}} (id text PRIMARY KEY, phone text NOT NULL)"),
    ]

`{{leads}}` is the table `sofa_leads`, which handlers reach as `ctx.db.select("leads", …)`.
Migrations run once each, in this order, at `happ setup sofa`: add new ones at the end and
never change one that has run.
"""

from happ_integ import Migration

MIGRATIONS: list[Migration] = []
