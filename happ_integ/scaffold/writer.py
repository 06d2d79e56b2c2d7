"""Rendering and writing a new integration: a shipped one copied under the new name.

    nethunt  integrations/sofa/ and tests/integrations/test_sofa_handlers.py
    keycrm   integrations/keycrm/ and tests/integrations/test_keycrm_handlers.py
    none     sofa's migrations.py and handlers/__init__.py, the rest from templates/none/

A copy is the source with the source's name replaced wherever it names the integration (module
paths, `name="sofa"`, `sofa_calls`, `happ call sofa`, `/sofa/webhook/…`), so the shipped
integrations are the one source of every flavour and a generated package cannot drift from them.
In keycrm, `keycrm` also names the CRM (`ctx.keycrm()`, the `"keycrm"` config, the
`"keycrm.find_buyer"` steps, `sims.keycrm`): those spellings are kept as they are. Templates
(`.tmpl`) are the file as it will be, with `%%name%%` where the integration's name goes.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from happ_integ.stores.db import INTEGRATION_NAME

FLAVOURS = ("nethunt", "keycrm", "none")
# What a missing source means: an installed copy without the checkout's tests/ (the Docker image).
FROM_A_CHECKOUT = (
    "run happ new-integration from a checkout of happ-integ installed with `pip install -e .` (make does)"
)
PLACEHOLDER = "%%name%%"
SUFFIX = ".tmpl"
TEST_TEMPLATE = "test.py"
# Every framework table is happ_<something>: an integration's tables must never be one of them.
RESERVED_PREFIX = "happ"


class ScaffoldError(ValueError):
    """The integration cannot be written as asked; the message names the fix."""


@dataclass(frozen=True)
class Source:
    """Where a flavour comes from: the shipped integration `package` (all of its files, or `files`),
    its test unless `templates` replace it, and the flavour's own templates over them."""

    package: str
    files: tuple[str, ...] | None = None
    templates: bool = False
    # Where the package's name is its CRM's name, not the integration's: kept as it is.
    crm_spellings: tuple[str, ...] = ()


SOURCES = {
    "nethunt": Source("sofa"),
    "keycrm": Source(
        "keycrm",
        crm_spellings=(
            r"(?<!integrations)\.keycrm\b",  # ctx.keycrm(), simulator.keycrm, env.sims.keycrm
            r'(?<!name=)"keycrm(?=[".])',  # the "keycrm" config, the "keycrm.update_card" steps
        ),
    ),
    "none": Source("sofa", files=("migrations.py", "handlers/__init__.py"), templates=True),
}


@dataclass
class Written:
    name: str
    crm: str
    package: Path
    test_file: Path
    files: list[Path] = field(default_factory=list)


def renamed(text: str, source: str, name: str, crm_spellings: tuple[str, ...] = ()) -> str:
    """`text` with `source` replaced by `name` wherever it names the integration: as a word of its
    own or a table prefix (`sofa_calls`), but not inside another name (`test_sofa_x`, `Sofa`)."""
    kept = [m.span() for pattern in crm_spellings for m in re.finditer(pattern, text)]

    def replace(match: re.Match[str]) -> str:
        inside = any(start <= match.start() < end for start, end in kept)
        return match.group() if inside else name

    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(source)}(?![A-Za-z0-9])", replace, text)


def shipped_root() -> Path:
    """The folder holding `integrations/` and `tests/`: the checkout happ-integ is installed from."""
    spec = importlib.util.find_spec("integrations")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ScaffoldError(
            f"the shipped integrations (the `integrations` package) are not importable: {FROM_A_CHECKOUT}"
        )
    return Path(locations[0]).resolve().parent


def _source_files(folder: Path, wanted: tuple[str, ...] | None) -> dict[str, str]:
    """Relative path → text of the package's Python files (or of `wanted` among them)."""
    if not folder.is_dir():
        raise ScaffoldError(f"the shipped integration {folder} is missing: {FROM_A_CHECKOUT}")
    found = {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    if wanted is None:
        return found
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ScaffoldError(
            f"the shipped integration {folder} has no {', '.join(missing)}: restore them (git)"
        )
    return {name: found[name] for name in wanted}


def _templates(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Relative path (without `.tmpl`) → template text, for every template under `folder`."""
    found: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found.update(_templates(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(SUFFIX):
            found[prefix + entry.name.removesuffix(SUFFIX)] = entry.read_text(encoding="utf-8")
    return found


def render(name: str, crm: str, root: Path | None = None) -> dict[str, str]:
    """`{"__init__.py": …, "handlers/crm_lookup.py": …, "test.py": …}`: the files of the package
    (paths relative to it) and, under `test.py`, its test module. `root` holds the shipped
    integrations and their tests (default: `shipped_root()`)."""
    if crm not in FLAVOURS:
        raise ScaffoldError(f"unknown CRM {crm!r}: use one of {', '.join(FLAVOURS)}")
    source = SOURCES[crm]
    root = root if root is not None else shipped_root()
    files = _source_files(root / "integrations" / source.package, source.files)
    if not source.templates:
        test = root / "tests" / "integrations" / f"test_{source.package}_handlers.py"
        if not test.is_file():
            raise ScaffoldError(f"the shipped test {test} is missing: {FROM_A_CHECKOUT}")
        files[TEST_TEMPLATE] = test.read_text(encoding="utf-8")
    rendered = {
        path: renamed(text, source.package, name, source.crm_spellings) for path, text in files.items()
    }
    if source.templates:
        own = _templates(resources.files("happ_integ.scaffold").joinpath("templates").joinpath(crm))
        rendered.update({path: text.replace(PLACEHOLDER, name) for path, text in own.items()})
    return rendered


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
