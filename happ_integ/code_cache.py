"""Compiled code kept in memory for the modules the workflow sandbox imports again for every run.

The sandbox gives each workflow run fresh copies of the modules it does not pass through (the
workflows and every integration's handlers), so that module state and non-deterministic calls stay
inside the run. Each copy is a new import: find the file, read it, and (with no bytecode cache,
as under PYTHONDONTWRITEBYTECODE, which the Docker image sets) compile the source again: every
run pays for compiling every module it imports, a cost that grows with the code and dwarfs a short
run's own work. With the cache the source is compiled once per process and every later import
executes the same code object; each run still gets its own module objects.

    install(("integrations", "workflows"))   # once, before the worker starts

A file changed on disk (same path, new mtime or size) is compiled again.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from types import CodeType

_lock = threading.Lock()
_code: dict[str, tuple[tuple[int, int], CodeType]] = {}


class _CachingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        with _lock:
            cached = _code.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        code = super().get_code(fullname)
        assert code is not None
        with _lock:
            _code[path] = (stamp, code)
        return code


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = tuple(roots)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] not in self.roots:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _CachingLoader(spec.loader.name, spec.loader.path)
        return spec


def install(roots: Sequence[str]) -> None:
    """Serve the source modules under these top-level packages from the cache (idempotent)."""
    wanted = set(roots)
    for finder in sys.meta_path:
        if isinstance(finder, _Finder):
            wanted -= set(finder.roots)
    if wanted:
        sys.meta_path.insert(0, _Finder(sorted(wanted)))


def cached_files() -> list[str]:
    with _lock:
        return sorted(_code)
