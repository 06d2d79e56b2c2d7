"""`happ new-integration`: a new integration package, written from the templates beside this module.

    written = write_integration("acme", crm="keycrm")          # integrations/acme/ + its test
    written.files                                              # every path written

A flavour is the CRM its handlers talk to: `nethunt` (modelled on integrations/sofa), `keycrm`
(on integrations/keycrm) or `none` (a lookup that finds nobody, a postcall that writes nothing).
Each writes `__init__.py`, `config.py`, `models.py`, `migrations.py`, `handlers/crm_lookup.py`,
`handlers/crm_postcall.py` and `tests/integrations/test_<name>.py`, which passes as generated.
"""

from happ_integ.scaffold.writer import (
    FLAVOURS,
    ScaffoldError,
    Written,
    check_name,
    render,
    write_integration,
)

__all__ = ["FLAVOURS", "ScaffoldError", "Written", "check_name", "render", "write_integration"]
