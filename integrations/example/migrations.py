"""SQL migrations; `{{calls}}` is this integration's `example_calls`."""

from happ_integ.stores.migrations import Migration

MIGRATIONS = [
    Migration(
        "001_calls",
        """
        CREATE TABLE {{calls}} (
            id            text PRIMARY KEY,
            call_id       text,
            status        text NOT NULL,
            callee        text,
            phone         text,
            lead_id       text,
            metadata      jsonb,
            next_retry_at timestamptz,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ON {{calls}} (status);
    """,
    ),
    Migration(
        "002_orders",
        """
        CREATE TABLE {{orders}} (
            id         text PRIMARY KEY,
            phone      text NOT NULL,
            product_id text NOT NULL,
            quantity   integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
    """,
    ),
]
