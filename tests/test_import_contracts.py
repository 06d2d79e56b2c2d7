"""The import contracts in pyproject.toml hold (ARCHITECTURE.md draws them).

`make lint` runs `lint-imports` too; running it here means `make test` (and so CI)
fails on an import that goes the wrong way, for example a workflow importing the
Temporal client side or the framework importing the gateway.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(tree: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(tool), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, env=env
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_breaks_a_contract(tmp_path: Path) -> None:
    # The same contracts over a copy of the tree in which a workflow imports the
    # client side: the checker must name it, or a passing run proves nothing.
    for name in ("happ_integ", "api", "control", "workflows", "activities", "integrations", "simulator"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = tmp_path / "workflows" / "outbound_call.py"
    bad.write_text(bad.read_text() + "\nimport control.client  # noqa: E402\n")
    result = _lint_imports(tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "workflows.outbound_call -> control.client" in result.stdout
