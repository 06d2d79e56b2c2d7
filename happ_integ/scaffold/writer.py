"""Rendering and writing the templates of `happ_integ/scaffold/templates/`.

templates/common/…   every flavour's files (migrations, the handlers package)
templates/<flavour>/ the flavour's own files; `test.py.tmpl` becomes tests/integrations/test_<name>.py

A template is the file as it will be, with `%%name%%` where the integration's name goes.
"""

from __future__ import annotations

import keyword
import shutil
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from happ_integ.stores.db import INTEGRATION_NAME

FLAVOURS = ("nethunt", "keycrm", "none")
PLACEHOLDER = "%%name%%"
SUFFIX = ".tmpl"
TEST_TEMPLATE = "test.py"
# Every framework table is happ_<something>: an integration's tables must never be one of them.
RESERVED_PREFIX = "happ"


class ScaffoldError(ValueError):
    """The integration cannot be written as asked; the message names the fix."""


@dataclass
class Written:
    name: str
    crm: str
    package: Path
    test_file: Path
    files: list[Path] = field(default_factory=list)


def _templates() -> Traversable:
    return resources.files("happ_integ.scaffold").joinpath("templates")


def _walk(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Relative path (without `.tmpl`) → template text, for every template under `folder`."""
    found: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(SUFFIX):
            found[prefix + entry.name.removesuffix(SUFFIX)] = entry.read_text(encoding="utf-8")
    return found


def render(name: str, crm: str) -> dict[str, str]:
    """`{"__init__.py": …, "handlers/crm_lookup.py": …, "test.py": …}`: the files of the package
    (paths relative to it) and, under `test.py`, its test module."""
    if crm not in FLAVOURS:
        raise ScaffoldError(f"unknown CRM {crm!r}: use one of {', '.join(FLAVOURS)}")
    root = _templates()
    templates = {**_walk(root.joinpath("common")), **_walk(root.joinpath(crm))}
    return {path: text.replace(PLACEHOLDER, name) for path, text in templates.items()}


def _existing(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / "__init__.py").is_file())


def check_name(name: str, directory: Path, tests_dir: Path) -> None:
    """Refuse a name that is no valid integration name, or that would collide with one there is."""
    if not INTEGRATION_NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid integration name: use lower-case letters, digits and _, "
            "starting with a letter, at most 40 characters (it prefixes table names)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword and cannot name a package: choose another name")
    if name == RESERVED_PREFIX or name.startswith(f"{RESERVED_PREFIX}_"):
        raise ScaffoldError(
            f"{name!r} is reserved: the framework's own tables are named happ_*; choose another name"
        )
    existing = _existing(directory)
    if name in existing or (directory / name).exists():
        raise ScaffoldError(
            f"integration {name!r} exists already ({directory / name}): choose another name "
            f"(there are: {', '.join(existing) or 'none'})"
        )
    for other in existing:
        if name.startswith(f"{other}_") or other.startswith(f"{name}_"):
            raise ScaffoldError(
                f"{name!r} would share table names with the integration {other!r} "
                f"({other}_… and {name}_… overlap): choose a name that is not the other's prefix"
            )
    test_file = tests_dir / f"test_{name}.py"
    if test_file.exists():
        raise ScaffoldError(f"{test_file} exists already: choose another name, or remove that file")


def write_integration(
    name: str,
    crm: str = "nethunt",
    directory: Path = Path("integrations"),
    tests_dir: Path | None = None,
) -> Written:
    """Write `directory/<name>/` and `tests_dir/test_<name>.py` (tests_dir defaults to
    `tests/integrations` beside `directory`); nothing is left behind if a write fails."""
    directory = Path(directory)
    tests_dir = (
        Path(tests_dir) if tests_dir is not None else directory.resolve().parent / "tests" / "integrations"
    )
    check_name(name, directory, tests_dir)
    files = render(name, crm)
    if not directory.is_dir():
        raise ScaffoldError(f"{directory} is not a folder: pass --dir the integrations folder of the project")
    package = directory / name
    test_file = tests_dir / f"test_{name}.py"
    written = Written(name=name, crm=crm, package=package, test_file=test_file)
    try:
        for relative, text in files.items():
            target = test_file if relative == TEST_TEMPLATE else package / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8") as out:
                out.write(text)
            written.files.append(target)
    except BaseException:
        shutil.rmtree(package, ignore_errors=True)
        if test_file in written.files:
            test_file.unlink(missing_ok=True)
        raise
    return written
