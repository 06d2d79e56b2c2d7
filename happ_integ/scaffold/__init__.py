"""`happ new-integration`: a new integration package, copied from a shipped one under the new name.

    written = write_integration("acme", crm="keycrm")          # integrations/acme/ + its test
    written.files                                              # every path written

A flavour is the CRM its handlers talk to: `nethunt` is integrations/sofa and its test, `keycrm`
integrations/keycrm and its test, each with the name replaced (`happ_integ.scaffold.writer` says
where); `none` (a lookup that finds nobody, a postcall that writes nothing) is the templates beside
this module over sofa's migrations and handlers package. Each writes `__init__.py`, `config.py`,
`models.py`, `migrations.py`, `handlers/__init__.py`, `handlers/crm_lookup.py`,
`handlers/crm_postcall.py` and `tests/integrations/test_<name>.py`, which passes as generated.
"""

from happ_integ.scaffold.writer import (
    FLAVOURS,
    ScaffoldError,
    Written,
    check_name,
    renamed,
    render,
    write_integration,
)

__all__ = ["FLAVOURS", "ScaffoldError", "Written", "check_name", "renamed", "render", "write_integration"]
