"""NetHunt's search syntax and `fieldActions` semantics, as the NetHunt simulator applies them.

    terms = search_terms('"Phone":+380994829573 AND Status:(New OR Called)')
    all(matches(record.fields, name, value) for name, value in terms)
    apply_action(record.fields, "Phone", {"add": "+380501234567"}, default_overwrite=False)

Search understands `"Field Name":value`, `Field:value`, `Field:(a OR b)` and plain words (all
terms must match; phone-like values compare by digits). Update applies `fieldActions` with the
`overwrite` query flag as each action's default: overwrite replaces; otherwise `add` extends a
list field, fills an empty field and leaves a filled single-value field alone; `remove` removes.
"""

from __future__ import annotations

import re
from typing import Any

from simulator import digits

_TERM = re.compile(r'(?:(?P<field>"[^"]+"|[^\s:"()]+)\s*:\s*)?(?P<value>\([^)]*\)|"[^"]*"|[^\s()]+)')


def search_terms(query: str) -> list[tuple[str | None, str]]:
    """`search_terms('Name:Іван AND Петренко')` → `[("Name", "Іван"), (None, "Петренко")]`."""
    return [(m["field"], m["value"]) for m in _TERM.finditer(query) if m["value"].upper() != "AND"]


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items if item is not None and item != ""]


def _value_matches(wanted: str, actual: str) -> bool:
    if wanted.lower() in actual.lower():
        return True
    w, a = digits(wanted), digits(actual)
    short, long = sorted((w, a), key=len)
    return len(short) >= 7 and len(w) >= 0.7 * len(wanted.strip("+ ")) and long.endswith(short)


def matches(fields: dict[str, Any], field_name: str | None, raw: str) -> bool:
    """Whether one search term (`field_name` None: any field) matches a record's `fields`."""
    if raw.startswith("("):
        wanted = [alt.strip().strip('"') for alt in re.split(r"\s+OR\s+", raw[1:-1]) if alt.strip()]
    else:
        wanted = [raw.strip('"')]
    if field_name is None:
        values = [s for v in fields.values() for s in _strings(v)]
    else:
        name = field_name.strip('"').lower()
        values = [s for k, v in fields.items() if k.lower() == name for s in _strings(v)]
    return any(_value_matches(w, v) for w in wanted for v in values)


def apply_action(fields: dict[str, Any], name: str, action: dict[str, Any], default_overwrite: bool) -> None:
    """Apply one `fieldActions` entry (`{"add": …, "remove": …, "overwrite": bool}`) to `fields`."""
    overwrite = bool(action.get("overwrite", default_overwrite))
    current = fields.get(name)
    if "add" in action:
        add = action["add"]
        if overwrite or current in (None, "", []):
            fields[name] = add
        elif isinstance(current, list):
            fields[name] = current + (add if isinstance(add, list) else [add])
    if "remove" in action:
        remove = action["remove"] if isinstance(action["remove"], list) else [action["remove"]]
        current = fields.get(name)
        if isinstance(current, list):
            fields[name] = [item for item in current if item not in remove]
        elif current in remove:
            fields[name] = None
