"""Modules imported again (as the workflow sandbox does for every run) execute the code compiled
the first time, and a file changed on disk is compiled again."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from happ_integ import code_cache


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cachedpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text("def answer():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    code_cache.install(["cachedpkg"])
    yield root
    for name in [m for m in sys.modules if m.split(".")[0] == "cachedpkg"]:
        del sys.modules[name]


def fresh_import(name: str) -> object:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_a_module_imported_again_runs_the_same_code(package: Path) -> None:
    first, second = fresh_import("cachedpkg.mod"), fresh_import("cachedpkg.mod")
    assert first is not second  # each import still makes its own module
    assert first.answer.__code__ is second.answer.__code__  # type: ignore[attr-defined]
    assert str(package / "mod.py") in code_cache.cached_files()


def test_a_changed_file_is_compiled_again(package: Path) -> None:
    assert fresh_import("cachedpkg.mod").answer() == 1  # type: ignore[attr-defined]
    (package / "mod.py").write_text("def answer():\n    return 22\n")
    assert fresh_import("cachedpkg.mod").answer() == 22  # type: ignore[attr-defined]


def test_other_packages_are_left_to_the_usual_finders(package: Path) -> None:
    module = fresh_import("cachedpkg.mod")
    assert type(module.__spec__.loader).__name__ == "_CachingLoader"  # type: ignore[union-attr]
    assert type(importlib.import_module("json").__spec__.loader).__name__ == "SourceFileLoader"
