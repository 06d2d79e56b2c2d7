"""The embedded PostgreSQL's failures say why: what initdb printed reaches the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from happ_integ.embedded import EmbeddedPostgres


def test_a_failing_initdb_is_an_error_that_quotes_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    initdb = bin_dir / "initdb"
    initdb.write_text(
        "#!/bin/sh\necho 'could not create shared memory segment: No space left on device' >&2\nexit 1\n"
    )
    initdb.chmod(0o755)
    server = EmbeddedPostgres(tmp_path / "pg", port=1)
    with pytest.raises(RuntimeError) as failed:
        server._initdb(bin_dir, None)
    assert "initdb failed (exit 1)" in str(failed.value)
    assert "could not create shared memory segment: No space left on device" in str(failed.value)
